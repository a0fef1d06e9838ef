"""The attention backend of the DiT's joint text+video attention: sdpa, sage or flash,
through diffusers' attention dispatcher.

diffusers' `CogVideoXAttnProcessor2_0` calls `F.scaled_dot_product_attention` itself, so
neither `set_attention_backend` nor context parallelism reach CogVideoX blocks. This module
gives the blocks a processor that does the same joint attention (text and video tokens in one
sequence, rotary on the video part only) but hands the product to `dispatch_attention_fn`,
with the two attributes diffusers' model-level switches look for (`_attention_backend`,
`_parallel_config`): `set_attention_backend` then selects sage / flash, and
`enable_parallelism` makes the same call a Ulysses all-to-all (parallel.py).

The default run (`sdpa`, one process) keeps diffusers' own processor untouched.
"""
from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from typing import Iterator

import torch
from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn
from diffusers.models.embeddings import apply_rotary_emb

from echovideo_core.acceleration.counting import transformer_blocks
from echovideo_core.acceleration.options import SpeedOptionError

DISPATCHER_NAMES: dict[str, str] = {"sdpa": "native", "sage": "sage", "flash": "flash"}
"""Our --attention names -> diffusers' AttentionBackendName values."""
BACKEND_PACKAGES: dict[str, str] = {"sage": "sageattention", "flash": "flash_attn"}
BACKEND_INSTALL: dict[str, str] = {"sage": "pip install sageattention", "flash": "pip install flash-attn"}


class DispatchingJointAttnProcessor:
    """CogVideoX joint attention whose product goes through diffusers' dispatcher."""

    _attention_backend: AttentionBackendName | None = None
    _parallel_config = None

    def __call__(self, attn: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                 attention_mask: torch.Tensor | None = None,
                 image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if attention_mask is not None:
            raise ValueError("the EchoVideo DiT's joint attention takes no attention mask")
        text_length = encoder_hidden_states.shape[1]
        tokens = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        heads = attn.heads
        # (B, S, H, D): the dispatcher's layout
        query, key, value = (projection(tokens).unflatten(-1, (heads, -1)) for projection in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            query[:, text_length:] = apply_rotary_emb(query[:, text_length:], image_rotary_emb, sequence_dim=1)
            if not attn.is_cross_attention:
                key[:, text_length:] = apply_rotary_emb(key[:, text_length:], image_rotary_emb, sequence_dim=1)
        mixed = dispatch_attention_fn(query, key, value, backend=self._attention_backend,
                                      parallel_config=self._parallel_config)
        mixed = attn.to_out[1](attn.to_out[0](mixed.flatten(2, 3).to(query.dtype)))
        return mixed[:, text_length:], mixed[:, :text_length]


def check_attention_backend(name: str, device: torch.device | str) -> None:
    """One clear line when `--attention name` cannot run here (before any model loads)."""
    if name == "sdpa":
        return
    if name not in DISPATCHER_NAMES:
        raise SpeedOptionError(f"--attention must be one of {', '.join(DISPATCHER_NAMES)}, got {name!r}")
    if importlib.util.find_spec(BACKEND_PACKAGES[name]) is None:
        raise SpeedOptionError(f"--attention {name} needs the {BACKEND_PACKAGES[name]} package, which is not installed "
                               f"({BACKEND_INSTALL[name]}, CUDA only); use --attention sdpa")
    if torch.device(device).type != "cuda":
        raise SpeedOptionError(f"--attention {name} runs on CUDA GPUs only; this run is on {device}: use --attention sdpa")


def install_dispatching_attention(transformer: torch.nn.Module, name: str) -> list:
    """Give every block the dispatching processor with backend `name`; returns the processors
    it replaced (for `restore_attention`)."""
    backend = AttentionBackendName(DISPATCHER_NAMES[name])
    replaced = []
    for block in transformer_blocks(transformer):
        replaced.append(block.attn1.processor)
        processor = DispatchingJointAttnProcessor()
        processor._attention_backend = backend
        block.attn1.set_processor(processor)
    return replaced


def restore_attention(transformer: torch.nn.Module, replaced: list) -> None:
    for block, processor in zip(transformer_blocks(transformer), replaced):
        block.attn1.set_processor(processor)


@contextmanager
def attention_backend(transformer: torch.nn.Module, name: str, *, dispatch: bool = False) -> Iterator[None]:
    """Backend `name` for the `with`. `dispatch` forces the dispatching processor for sdpa too
    (context parallelism needs it); plain sdpa otherwise keeps diffusers' processor."""
    if name == "sdpa" and not dispatch:
        yield
        return
    replaced = install_dispatching_attention(transformer, name)
    try:
        yield
    finally:
        restore_attention(transformer, replaced)
