"""Prompt -> T5 last hidden state, exactly 226 tokens (the DiT's text length).

The release pads every prompt to 226 tokens and runs the encoder **without an attention
mask**, so the pad positions are encoded too and carry information the model was trained
with. We do the same; a prompt longer than 226 tokens is cut (the end-of-sequence token
is kept) and the cut is logged as a warning, never silently.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import T5EncoderModel, T5Tokenizer
logger = logging.getLogger(__name__)

MAX_SEQUENCE_LENGTH = 226


@dataclass(frozen=True)
class PromptEmbeddings:
    """T5 output for a batch of prompts.

    embeds: (B, 226, D_text) float, the encoder's last hidden state over all 226 positions.
    input_ids: (B, 226) int64, the padded token ids that produced it.
    truncated: True when at least one prompt was longer than 226 tokens and was cut.
    """

    embeds: torch.Tensor
    input_ids: torch.Tensor
    truncated: bool


def tokenize(
    tokenizer: T5Tokenizer, prompts: Sequence[str], max_length: int = MAX_SEQUENCE_LENGTH
) -> tuple[torch.Tensor, bool]:
    """Pad to `max_length`, cut longer prompts (warning), `</s>` appended: (B, max_length)."""
    full = tokenizer(list(prompts), add_special_tokens=True, truncation=False).input_ids
    too_long = [len(ids) for ids in full if len(ids) > max_length]
    if too_long:
        logger.warning(
            "prompt is %d tokens long; only the first %d are used (T5 limit of the model)",
            max(too_long), max_length,
        )
    ids = tokenizer(
        list(prompts), padding="max_length", max_length=max_length, truncation=True,
        add_special_tokens=True, return_tensors="pt",
    ).input_ids
    return ids, bool(too_long)


@torch.no_grad()
def encode_prompt(
    tokenizer: T5Tokenizer,
    text_encoder: T5EncoderModel,
    prompts: str | Sequence[str],
    max_length: int = MAX_SEQUENCE_LENGTH,
) -> PromptEmbeddings:
    """Encode one prompt or a list of prompts, no attention mask (as released)."""
    if isinstance(prompts, str):
        prompts = [prompts]
    ids, truncated = tokenize(tokenizer, prompts, max_length)
    embeds = text_encoder(ids.to(text_encoder.device))[0]
    return PromptEmbeddings(embeds=embeds, input_ids=ids, truncated=truncated)
