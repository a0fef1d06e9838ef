"""Loading whole bundles: the EchoVideo model (DiT + VAE + scheduler), the text encoder and
the face models, from a released folder or from the single files users already keep.

The released folder layout (`RELEASED_FOLDERS`) is fixed: transformer/, vae/,
text_encoder/, tokenizer/, scheduler/, clip_visual_encoder/ (+ face_encoder/).
`model_index.json` is not read (the release's names its own classes).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch
from diffusers import CogVideoXDPMScheduler

from echovideo_core.bundles import EchoVideoModel, FaceModels, TextEncoder
from echovideo_core.errors import InvalidInputError, MissingModelFilesError
from echovideo_core.loading.scheduler import load_scheduler_config
from echovideo_core.loading.siglip import load_siglip
from echovideo_core.loading.text_encoder import check_tokenizer_fits, load_t5, load_tokenizer
from echovideo_core.loading.transformer import load_transformer
from echovideo_core.loading.vae import load_vae
from echovideo_core.lora import apply_lora
from echovideo_core.placement import Placement, place_transformer
from echovideo_core.transformer import EchoVideoTransformer3DModel

logger = logging.getLogger(__name__)

RELEASED_FOLDERS: dict[str, str] = {
    "transformer": "transformer", "vae": "vae", "text_encoder": "text_encoder",
    "tokenizer": "tokenizer", "scheduler": "scheduler", "siglip": "clip_visual_encoder",
}


def check_released_folder(root: Path, parts: Sequence[str]) -> None:
    """MissingModelFilesError naming every sub-folder of `parts` that `root` lacks."""
    missing = [RELEASED_FOLDERS[p] for p in parts if not (root / RELEASED_FOLDERS[p]).is_dir()]
    if missing:
        raise MissingModelFilesError(
            f"EchoVideo model folder {root} lacks {', '.join(f'{m}/' for m in missing)} "
            f"(expected {', '.join(f'{m}/' for m in RELEASED_FOLDERS.values())})"
        )


def released_root(path: Path) -> Path | None:
    """`path` when it is a released folder (holds transformer/), else None."""
    return path if path.is_dir() and (path / "transformer").is_dir() else None


def load_scheduler(folder: str | Path | None) -> CogVideoXDPMScheduler:
    """The release's sampler with the folder's settings (or the release's); sampling.py
    turns its config into a fresh scheduler of the chosen kind for every run."""
    return CogVideoXDPMScheduler.from_config(load_scheduler_config(folder))


def load_dit(path: str | Path, *, dtype: torch.dtype, weights: str | None = None) -> EchoVideoTransformer3DModel:
    """The DiT in `dtype`, or with its large layers in a low-bit `weights` format (weights/
    formats.py: fp8, int8, gguf, gguf-q8_0 ...; computing in `dtype`). Without `weights` a
    .gguf file keeps its blocks and any other source loads whole in `dtype`."""
    from echovideo_core.weights.formats import GGUF_SUFFIX, require_low_bit_packages, weights_format

    path = Path(path)
    if weights is None and path.suffix.lower() != GGUF_SUFFIX:
        return load_transformer(path, torch_dtype=dtype)
    if weights is not None and weights_format(weights).low_bit is None:
        return load_transformer(path, torch_dtype=weights_format(weights).dtype)
    require_low_bit_packages(weights, gguf_file=path.suffix.lower() == GGUF_SUFFIX)
    from echovideo_core.weights.transformer import load_transformer_in_format

    return load_transformer_in_format(path, weights, compute_dtype=dtype)


def load_t5_as(path: str | Path, *, dtype: torch.dtype, weights: str | None = None):
    """T5 in `dtype`, or with its encoder blocks in fp8 / int8 (`weights`), computing in `dtype`."""
    if weights is None:
        return load_t5(path, dtype)
    from echovideo_core.weights.formats import require_low_bit_packages

    require_low_bit_packages(weights)
    from echovideo_core.weights.t5 import load_t5_in_format

    return load_t5_in_format(path, weights, compute_dtype=dtype)


def load_echovideo_model(
    transformer_path: str | Path, *, vae_path: str | Path | None = None, dtype: torch.dtype = torch.bfloat16,
    placement: Placement | None = None, weights: str | None = None,
    loras: Sequence[tuple[str | Path, float]] = (),
) -> EchoVideoModel:
    """Transformer from a released root / `transformer/` folder / single file; VAE from
    `vae_path` (folder or file) or the root's `vae/`; scheduler from the root's `scheduler/`.
    `loras`: (file, strength) pairs merged into the freshly loaded transformer, so a cached
    model is never changed behind its user's back (another strength means another load).
    `weights`: the DiT's storage format (load_dit); LoRAs merge into float weights only."""
    placement = placement or Placement.create("cpu", "cpu")
    path = Path(transformer_path)
    root = released_root(path)
    if vae_path is None:
        if root is None or not (root / "vae").is_dir():
            raise MissingModelFilesError(
                f"no VAE: {path} is not a released EchoVideo folder with vae/ inside; "
                "pick a CogVideoX VAE file (models/vae/) in the loader"
            )
        vae_path = root / "vae"
    if loras and (weights not in (None, "bf16", "fp16", "fp32") or path.suffix.lower() == ".gguf"):
        raise InvalidInputError(f"a LoRA merges into float weights: load the DiT as bf16 / fp16 / fp32 to use one "
                                f"(weights {weights or 'gguf'} keep it low-bit)")
    transformer = load_dit(root / "transformer" if root else path, dtype=dtype, weights=weights)
    for lora, strength in loras:
        apply_lora(transformer, lora, strength)
    vae = load_vae(vae_path, torch.float32)
    place_transformer(transformer, placement)
    return EchoVideoModel(transformer=transformer, vae=vae.to(placement.storage_device),
                          scheduler=load_scheduler(root / "scheduler" if root else None),
                          placement=placement, source=str(path))


def load_text_encoder_bundle(source: str | Path, *, tokenizer_dir: str | Path | None = None,
                             dtype: torch.dtype = torch.bfloat16, placement: Placement | None = None,
                             weights: str | None = None) -> TextEncoder:
    """T5 from a released root (text_encoder/ + tokenizer/), a `text_encoder/` folder or a
    single weight file; the tokenizer from `tokenizer_dir` or the root's `tokenizer/`."""
    placement = placement or Placement.create("cpu", "cpu")
    path = Path(source)
    if path.is_dir() and (path / "text_encoder").is_dir():
        tokenizer_dir = tokenizer_dir or path / "tokenizer"
    model = load_t5_as(path, dtype=dtype, weights=weights)
    if tokenizer_dir is None:
        raise MissingModelFilesError(f"no T5 tokenizer for {path}: expected a tokenizer/ folder with spiece.model")
    tokenizer = load_tokenizer(tokenizer_dir)
    check_tokenizer_fits(tokenizer, model, path)
    return TextEncoder(tokenizer=tokenizer, model=model.to(placement.storage_device), placement=placement)


def load_face_models(antelopev2_dir: str | Path, parser_path: str | Path, retinaface_path: str | Path | None,
                     siglip_source: str | Path, *, dtype: torch.dtype = torch.float32,
                     placement: Placement | None = None) -> FaceModels:
    """Everything the face stage needs; the small face models run on the execution device.
    The files may sit in different folders (ComfyUI keeps antelopev2 in
    models/insightface/models/ and the parser in models/facexlib/)."""
    from echovideo_core.face.prepare import FacePreparer

    placement = placement or Placement.create("cpu", "cpu")
    preparer = FacePreparer.from_paths(antelopev2_dir, parser_path, retinaface_path, device=placement.execution_device)
    siglip = load_siglip(siglip_source, dtype)
    siglip.model.to(placement.storage_device)
    return FaceModels(preparer=preparer, siglip=siglip, placement=placement)
