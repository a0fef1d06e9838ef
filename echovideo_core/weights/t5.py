"""The T5 text encoder in a weights format (bf16 / fp16 / fp32 / fp8 / int8), layer by layer.

Same machinery as the DiT (layered.py): built on the meta device, each encoder-block linear
layer read and stored in the format before the next. Sources: a released root (its
`text_encoder/`), a transformers folder (config.json + model.safetensors or shards), or a
single file such as ComfyUI's `t5xxl_fp16.safetensors` / `t5xxl_fp8_e4m3fn_scaled.safetensors`
(config from our metadata or from the tensor shapes). Decoder tensors of a full T5
checkpoint are ignored; the shared embedding may be stored under either of its two names.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from accelerate import init_empty_weights
from transformers import T5Config, T5EncoderModel

from echovideo_core.loading.state_dict import read_state_dict
from echovideo_core.loading.text_encoder import T5_PREFIXES, t5_config_from_state_dict
from echovideo_core.weights.formats import T5_WEIGHTS, weights_format
from echovideo_core.weights.layered import check_keys, fill_layer_by_layer, meta_shapes, t5_low_bit_rule
from echovideo_core.weights.sources import RenamedSource, TensorSource, open_source

logger = logging.getLogger(__name__)

_EMBEDDING_NAMES = {"shared.weight": "encoder.embed_tokens.weight", "encoder.embed_tokens.weight": "shared.weight"}


def open_t5_source(path: str | Path) -> TensorSource:
    path = Path(path)
    if path.is_dir() and (path / "text_encoder").is_dir():
        path = path / "text_encoder"
    source = open_source(path, prefixes=T5_PREFIXES, what="T5 encoder", index_name="model.safetensors.index.json",
                         usual="model.safetensors", read_other=lambda file: (read_state_dict(file)[0], None))
    return RenamedSource(source, aliases=_EMBEDDING_NAMES,
                         dropped=lambda key: key.startswith("decoder.") or key == "lm_head.weight")


def load_t5_in_format(path: str | Path, weights: str = "bf16", *, compute_dtype: torch.dtype | None = None,
                      device: torch.device | str = "cpu") -> T5EncoderModel:
    """T5 encoder from `path` with its encoder-block linear layers in `weights` (T5_WEIGHTS)."""
    fmt = weights_format(weights, compute_dtype=compute_dtype, valid=T5_WEIGHTS, what="T5 weights")
    source = open_t5_source(path)
    config_values = {k: v for k, v in (source.config or {}).items() if not k.startswith("_")}
    config = T5Config(**config_values) if config_values else t5_config_from_state_dict(meta_shapes(source.shapes()))
    config._attn_implementation = "eager"  # as every T5 the library loads: the release's attention
    with init_empty_weights(include_buffers=False):
        model = T5EncoderModel(config)
    model.tie_weights()  # the shared embedding under its two names: one tensor, read once
    check_keys(model, source, "a T5 encoder")
    fill_layer_by_layer(model, source, fmt, t5_low_bit_rule(model), device)
    logger.info("loaded T5 encoder from %s as %s (%d layers, width %d)", source.description, fmt.name,
                config.num_layers, config.d_model)
    return model.eval()
