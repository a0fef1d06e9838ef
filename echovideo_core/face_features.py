"""Identity image -> SigLIP last hidden state, plus the ArcFace vector: the face features.

The high-level face path of IITF. SigLIP here is the plain `transformers` vision tower
loaded from the release's `clip_visual_encoder/` folder (vision config, `vision_model.`
keys, no pooling head). The unconditional CFG branch uses an all-black image of the same
shape (every pixel value -1 after normalisation) and an all-zero ArcFace vector.

The release's rounding (pixel values and ArcFace to bfloat16, `feature_rounding="bfloat16"`)
is requested by the caller (numerics.Numerics), never hidden in the model. Loading the
tower is `loading.siglip`'s job.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.loading.siglip import SiglipEncoder
from echovideo_core.numerics import FeatureRounding, feature_rounding_from

ARCFACE_DIM = 512


@dataclass(frozen=True)
class FaceFeatures:
    """Face inputs of the fusion for a batch.

    siglip: (B, 196, D_face) float32, SigLIP last hidden state (196 = (224/16)^2 in the release).
    arcface: (B, 512) float32, the raw (not L2-normalised) ArcFace embedding.
    """

    siglip: torch.Tensor
    arcface: torch.Tensor


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
    feature_rounding: FeatureRounding = "bfloat16",
) -> FaceFeatures:
    """Conditional face features; "bfloat16" rounding rounds pixels and ArcFace as released."""
    rounds = feature_rounding_from(feature_rounding) == "bfloat16"
    vector = check_arcface(arcface)
    if rounds:
        vector = round_to_bfloat16(vector)
    siglip = encode_siglip(encoder, identity_image, round_pixels_to_bfloat16=rounds)
    return FaceFeatures(siglip=siglip, arcface=vector)


def unconditional_face_features(
    encoder: SiglipEncoder, image_shape: tuple[int, ...], *, feature_rounding: FeatureRounding = "bfloat16"
) -> FaceFeatures:
    """The negative branch: SigLIP of an all-black image of `image_shape`, zero ArcFace."""
    black = np.zeros(tuple(image_shape), dtype=np.uint8)
    rounds = feature_rounding_from(feature_rounding) == "bfloat16"
    siglip = encode_siglip(encoder, black, round_pixels_to_bfloat16=rounds)
    return FaceFeatures(siglip=siglip, arcface=torch.zeros(1, ARCFACE_DIM))
