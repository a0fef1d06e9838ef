"""Identity image -> SigLIP last hidden state, plus the ArcFace vector: the face features.

The high-level face path of IITF. SigLIP here is the plain `transformers` vision tower
loaded from the release's `clip_visual_encoder/` folder (vision config, `vision_model.`
keys, no pooling head). The unconditional CFG branch uses an all-black image of the same
shape (every pixel value -1 after normalisation) and an all-zero ArcFace vector.

`as_released` rounding (pixel values and ArcFace to bfloat16) is requested by the caller
(the pipeline's numeric mode), never hidden in the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import SiglipVisionModel

try:  # transformers >= 5: the PIL backend by name (the default one needs torchvision)
    from transformers import SiglipImageProcessorPil as SiglipProcessor
except ImportError:  # transformers 4.x: the PIL-based processor is the default class
    from transformers import SiglipImageProcessor as SiglipProcessor

from echovideo_core.errors import InvalidInputError, require_files

ARCFACE_DIM = 512


@dataclass(frozen=True)
class SiglipEncoder:
    """The SigLIP image processor and vision tower, loaded together."""

    processor: SiglipProcessor
    model: SiglipVisionModel


@dataclass(frozen=True)
class FaceFeatures:
    """Face inputs of the fusion for a batch.

    siglip: (B, 196, D_face) float32, SigLIP last hidden state (196 = (224/16)^2 in the release).
    arcface: (B, 512) float32, the raw (not L2-normalised) ArcFace embedding.
    """

    siglip: torch.Tensor
    arcface: torch.Tensor


def load_siglip(folder: str | Path, torch_dtype: torch.dtype = torch.float32) -> SiglipEncoder:
    """Processor + vision tower from `clip_visual_encoder/`, offline."""
    folder = Path(folder)
    require_files(
        folder, ["config.json", "preprocessor_config.json"], what="SigLIP (clip_visual_encoder)"
    )
    processor = SiglipProcessor.from_pretrained(str(folder), local_files_only=True)
    model = SiglipVisionModel.from_pretrained(str(folder), torch_dtype=torch_dtype, local_files_only=True)
    return SiglipEncoder(processor=processor, model=model.eval().requires_grad_(False))


def check_identity_image(image: np.ndarray) -> np.ndarray:
    """Accept an (H, W, 3) uint8 RGB array (numpy or torch); raise InvalidInputError otherwise."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(
            f"face_image must be an (H, W, 3) uint8 numpy array, got {type(image).__name__}"
        )
    if image.dtype != np.uint8:
        raise InvalidInputError(f"face_image must be uint8 (0..255), got dtype {image.dtype}")
    if image.ndim != 3:
        raise InvalidInputError(f"face_image must have shape (H, W, 3), got {tuple(image.shape)}")
    if image.shape[0] == 3 and image.shape[2] != 3:
        raise InvalidInputError(
            f"face_image looks channels-first {tuple(image.shape)}; pass (H, W, 3), e.g. image.transpose(1, 2, 0)"
        )
    if image.shape[2] != 3:
        raise InvalidInputError(
            f"face_image must have 3 RGB channels (H, W, 3), got {image.shape[2]} channels"
        )
    return image


def check_arcface(arcface: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Accept (512,) or (1, 512) numpy/torch; return (1, 512) float32."""
    vector = torch.as_tensor(np.asarray(arcface) if not isinstance(arcface, torch.Tensor) else arcface)
    vector = vector.detach().to("cpu", torch.float32)
    if vector.ndim == 1:
        vector = vector[None]
    if vector.ndim != 2 or vector.shape != (1, ARCFACE_DIM):
        raise InvalidInputError(
            f"arcface_embedding must have shape (512,) or (1, 512), got {tuple(vector.shape)}"
        )
    if not torch.isfinite(vector).all():
        raise InvalidInputError("arcface_embedding contains NaN or inf")
    return vector


def round_to_bfloat16(x: torch.Tensor) -> torch.Tensor:
    """x rounded to bfloat16 and back: the release's casts inside a float32 run."""
    return x.to(torch.bfloat16).to(x.dtype)


@torch.no_grad()
def encode_siglip(
    encoder: SiglipEncoder, identity_image: np.ndarray, *, round_pixels_to_bfloat16: bool = False
) -> torch.Tensor:
    """(H, W, 3) uint8 -> SigLIP last hidden state (1, 196, D_face) float32."""
    image = check_identity_image(identity_image)
    pixels = encoder.processor(images=image, return_tensors="pt").pixel_values
    if round_pixels_to_bfloat16:
        pixels = round_to_bfloat16(pixels)
    model = encoder.model
    hidden = model(pixel_values=pixels.to(model.device, model.dtype)).last_hidden_state
    return hidden.float()


def face_features(
    encoder: SiglipEncoder,
    identity_image: np.ndarray,
    arcface: np.ndarray | torch.Tensor,
    *,
    as_released: bool = True,
) -> FaceFeatures:
    """Conditional face features; `as_released` rounds pixels and ArcFace to bfloat16."""
    vector = check_arcface(arcface)
    if as_released:
        vector = round_to_bfloat16(vector)
    siglip = encode_siglip(encoder, identity_image, round_pixels_to_bfloat16=as_released)
    return FaceFeatures(siglip=siglip, arcface=vector)


def unconditional_face_features(
    encoder: SiglipEncoder, image_shape: tuple[int, ...], *, as_released: bool = True
) -> FaceFeatures:
    """The negative branch: SigLIP of an all-black image of `image_shape`, zero ArcFace."""
    black = np.zeros(tuple(image_shape), dtype=np.uint8)
    siglip = encode_siglip(encoder, black, round_pixels_to_bfloat16=as_released)
    return FaceFeatures(siglip=siglip, arcface=torch.zeros(1, ARCFACE_DIM))
