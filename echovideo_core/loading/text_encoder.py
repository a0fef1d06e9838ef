"""The T5 v1.1 XXL encoder and its tokenizer, from a released folder or a single file.

ComfyUI users already have `t5xxl_fp16.safetensors` (or an fp8 variant) in
`models/text_encoders/`; EchoVideo uses the same encoder, so that file loads directly. A
file's architecture is read from its shapes (width, depth, heads, vocabulary); the rest are
T5 v1.1's fixed values. The model is built empty and the tensors assigned in, so a
4.7 B-parameter T5 is never allocated twice. Attention is eager: the release's path
(SDPA differs by ~6e-6 in float32 on case A).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from echovideo_core.errors import CheckpointMismatchError, MissingModelFilesError, require_files
from echovideo_core.loading.state_dict import (assign_strict, config_from_metadata, empty_model, read_folder_weights,
                                               read_json, read_state_dict, strip_common_prefix)

logger = logging.getLogger(__name__)

T5_PREFIXES = ("text_encoders.t5xxl.transformer.", "t5xxl.transformer.", "transformer.", "text_encoder.")
# T5 v1.1 settings that the tensor shapes do not show (the release's encoder).
T5_FIXED: dict[str, Any] = dict(
    feed_forward_proj="gated-gelu", relative_attention_max_distance=128, dropout_rate=0.0,
    is_encoder_decoder=False, use_cache=False, tie_word_embeddings=False, pad_token_id=0,
    eos_token_id=1, layer_norm_epsilon=1e-6,
)


def t5_config_from_state_dict(state: Mapping[str, torch.Tensor]) -> T5Config:
    """T5 encoder config from the tensor shapes (T5 v1.1 XXL: 4096 wide, 24 blocks, 64 heads)."""
    try:
        vocab, width = state["shared.weight"].shape
        bias = state["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        inner = state["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0]
        d_ff = state["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"].shape[0]
    except KeyError as err:
        raise CheckpointMismatchError(f"not a T5 v1.1 encoder checkpoint: no tensor {err.args[0]}") from err
    buckets, heads = bias.shape
    layers = {int(k.split(".")[2]) for k in state if k.startswith("encoder.block.")}
    return T5Config(vocab_size=vocab, d_model=width, d_kv=inner // heads, d_ff=d_ff, num_layers=len(layers),
                    num_heads=heads, relative_attention_num_buckets=buckets, **T5_FIXED)


def dequantize_scaled_fp8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's "scaled fp8" files store `w_fp8` and `w.scale_weight`: weight = w * scale.

    Plain fp8 files (no scales) pass through; the cast to the run's dtype happens later.
    """
    scales = {k[: -len("scale_weight")] + "weight": v for k, v in state.items() if k.endswith(".scale_weight")}
    out = {}
    for key, value in state.items():
        if key == "scaled_fp8" or key.endswith((".scale_weight", ".scale_input")):
            continue
        out[key] = value.float() * scales[key].float() if key in scales else value
    return out


def _encoder_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's keys only, with the tied embedding under both of its names."""
    if "shared.weight" not in state and "encoder.embed_tokens.weight" in state:
        state["shared.weight"] = state["encoder.embed_tokens.weight"]
    state = {k: v for k, v in state.items() if not k.startswith("decoder.") and k != "lm_head.weight"}
    if "shared.weight" in state:
        state["encoder.embed_tokens.weight"] = state["shared.weight"]
    return state


def load_t5(path: str | Path, torch_dtype: torch.dtype = torch.float32) -> T5EncoderModel:
    """T5 encoder from a `text_encoder/` folder (config.json + weights), a released root
    holding one, or one weight file (ComfyUI's `t5xxl_fp16.safetensors`, fp8 variants)."""
    path = Path(path)
    if path.is_dir():
        folder = path / "text_encoder" if (path / "text_encoder" / "config.json").is_file() else path
        require_files(folder, ["config.json"], what="T5 text encoder")
        state, _ = read_folder_weights(folder, what="T5 text encoder")
        config = T5Config.from_dict(read_json(folder / "config.json"))
        source = folder
    else:
        state, metadata = read_state_dict(path)
        state = dequantize_scaled_fp8(strip_common_prefix(state, T5_PREFIXES))
        saved = config_from_metadata(metadata, path)
        config = T5Config(**saved) if saved else t5_config_from_state_dict(_encoder_tensors(dict(state)))
        source = path
    config._attn_implementation = "eager"
    model = empty_model(lambda: T5EncoderModel(config))
    assign_strict(model, _encoder_tensors(state), what=f"{source} does not fit a T5 encoder", dtype=torch_dtype)
    logger.info("loaded T5 encoder from %s (%d layers, width %d, %s)", source, config.num_layers, config.d_model, torch_dtype)
    return model.eval().requires_grad_(False)


def load_tokenizer(folder: str | Path) -> T5Tokenizer:
    """The T5 tokenizer from spiece.model (the release's tokenizer/) or tokenizer.json
    (e.g. ComfyUI's t5_tokenizer/)."""
    folder = Path(folder)
    if (folder / "spiece.model").is_file() or (folder / "tokenizer.json").is_file():
        return T5Tokenizer.from_pretrained(str(folder), local_files_only=True)
    if not folder.is_dir():
        require_files(folder, ["spiece.model"], what="T5 tokenizer")
    raise MissingModelFilesError(f"T5 tokenizer: {folder} has neither spiece.model nor tokenizer.json")


def check_tokenizer_fits(tokenizer: T5Tokenizer, model: T5EncoderModel, source: str | Path) -> None:
    """A tokenizer with more pieces than the encoder has rows belongs to another model."""
    if len(tokenizer) > model.config.vocab_size:
        raise MissingModelFilesError(
            f"the tokenizer has {len(tokenizer)} tokens but the T5 in {source} only "
            f"{model.config.vocab_size}: they do not belong together"
        )
