"""The EchoVideo DiT in a weights format, from a released folder, a single file or a .gguf file.

    load_transformer_in_format("models/echovideo", "fp8")            # released folder
    load_transformer_in_format("echovideo_fp8_scaled.safetensors")   # fp8 file, kept fp8
    load_transformer_in_format("echovideo-Q4_K.gguf")                # GGUF blocks, kept
    load_transformer_in_format("models/echovideo", "gguf-q4_k")      # quantised while loading

The model is built on the meta device and filled layer by layer (layered.py), so loading
never holds a full-precision copy. Keys are checked first against the config (the file's,
else one inferred from the shapes, else the release's layout) and any mismatch is refused
naming the keys: a GGUF or fp8 file of another model, or one without the IITF layers.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.loading import (FOREIGN_PREFIXES, INDEX_NAME, WEIGHT_NAME, CheckpointMismatchError, build_on_meta,
                                    compare_keys, infer_config, read_transformer_weights)
from echovideo_core.transformer import EchoVideoTransformer3DModel
from echovideo_core.weights.formats import weights_format
from echovideo_core.weights.layered import check_keys, fill_layer_by_layer, meta_shapes, transformer_low_bit
from echovideo_core.weights.sources import TensorSource, open_source

logger = logging.getLogger(__name__)

RELEASE_TRANSFORMER_CONFIG: dict[str, Any] = {"in_channels": 32}
"""The released 5.6B DiT: the constructor's defaults with 32 input channels (its config.json)."""
MODEL_NAME = "EchoVideoTransformer3DModel"
IITF_PREFIXES = ("face_proj.", "text_proj.", "face_info_proj.", "face_prj_wofc.")
"""The identity-fusion layers EchoVideo adds to CogVideoX (kept bf16 in every format)."""


def open_transformer_source(path: str | Path) -> TensorSource:
    """A released root (with transformer/), a transformer/ folder, a .safetensors / .gguf
    file, or a weights-only .bin/.pth (read whole), as a TensorSource."""
    path = Path(path)
    if path.is_dir() and (path / "transformer").is_dir() and not (path / "config.json").exists():
        path = path / "transformer"
    return open_source(path, prefixes=FOREIGN_PREFIXES, what="EchoVideo transformer", index_name=INDEX_NAME,
                       usual=WEIGHT_NAME, read_other=lambda file: read_transformer_weights(file))


def stored_weights(source: TensorSource) -> str:
    """The format a source is in, as a weights name: "gguf", "fp8" (any fp8 tensor), else "bf16"."""
    from echovideo_core.weights.gguf_files import GGUFSource

    if isinstance(source, GGUFSource):
        return "gguf"
    return "fp8" if getattr(source, "has_fp8", False) else "bf16"


def transformer_config(source: TensorSource) -> dict[str, Any]:
    """The source's config, else one inferred from its shapes.

    A DiT without (some of) the IITF layers gets the release's IITF sizes, so the key check
    that follows names exactly the IITF tensors it lacks; a source that is no EchoVideo DiT
    at all is refused with its differences from the release's layout.
    """
    if source.config:
        return dict(source.config)
    shapes = meta_shapes(source.shapes())
    release = build_on_meta(RELEASE_TRANSFORMER_CONFIG).state_dict()
    try:
        return infer_config(shapes)
    except CheckpointMismatchError:
        pass
    try:
        return infer_config({**{k: v for k, v in release.items() if k.startswith(IITF_PREFIXES)}, **shapes})
    except CheckpointMismatchError:
        report = compare_keys({k: tuple(v.shape) for k, v in release.items()}, shapes)
        raise CheckpointMismatchError(
            f"{source.description} is not an EchoVideo transformer (compared with the released layout: "
            f"{report.describe()})"
        ) from None


def transformer_from_source(source: TensorSource, weights: str | None = None, *, compute_dtype: torch.dtype | None = None,
                            device: torch.device | str = "cpu", config: Mapping[str, Any] | None = None
                            ) -> EchoVideoTransformer3DModel:
    """The DiT from any TensorSource (a file, or the random full-size weights of testing/)."""
    fmt = weights_format(weights or stored_weights(source), compute_dtype=compute_dtype)
    if fmt.low_bit == "gguf" and stored_weights(source) != "gguf":
        raise InvalidInputError(
            f"weights 'gguf' keep a .gguf file's blocks, but {source.description} is not a .gguf file: "
            "convert it (echovideo convert --to gguf-q4_k) or load it as gguf-q8_0 / gguf-q5_k / gguf-q4_k"
        )
    model = build_on_meta(dict(config or transformer_config(source)))
    check_keys(model, source, MODEL_NAME)
    fill_layer_by_layer(model, source, fmt, transformer_low_bit, device)
    logger.info("loaded EchoVideo transformer from %s as %s", source.description, fmt.name)
    return model.eval()


def load_transformer_in_format(path: str | Path, weights: str | None = None, *, compute_dtype: torch.dtype | None = None,
                               device: torch.device | str = "cpu", config: Mapping[str, Any] | None = None
                               ) -> EchoVideoTransformer3DModel:
    """Load the DiT from `path` with its large layers in `weights` (see formats.py; None: as
    stored: "gguf" for a .gguf file, "fp8" for an fp8 file, else "bf16"), on `device`."""
    return transformer_from_source(open_transformer_source(path), weights, compute_dtype=compute_dtype,
                                   device=device, config=config)
