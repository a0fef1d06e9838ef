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

import os
from dataclasses import dataclass

import numpy as np
import torch

from echovideo_core.errors import InputFileError, InvalidInputError
from echovideo_core.loading.siglip import SiglipEncoder
from echovideo_core.numerics import FeatureRounding, feature_rounding_from
from echovideo_core.paths import check_input_file

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
    """Accept an (H, W, 3) uint8 RGB array (numpy or torch) with H, W >= 1; raise
    InvalidInputError otherwise."""
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
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidInputError(f"face_image is empty: shape {tuple(image.shape)}")
    return image


def check_arcface(arcface: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Accept (512,) or (1, 512) real numbers, numpy/torch/list; return (1, 512) float32."""
    if isinstance(arcface, torch.Tensor):
        vector = arcface.detach()
        numeric = not (vector.dtype.is_complex or vector.dtype == torch.bool)
    else:
        try:
            array = np.asarray(arcface)
        except (ValueError, TypeError) as err:  # ragged lists and the like
            raise InvalidInputError(f"arcface_embedding must be an array of 512 numbers ({err})") from None
        numeric = array.dtype.kind in "iuf"
        vector = torch.from_numpy(array.astype(np.float32)) if numeric else None
    if not numeric:
        kind = vector.dtype if vector is not None else np.asarray(arcface).dtype
        raise InvalidInputError(f"arcface_embedding must hold real numbers, got dtype {kind}")
    vector = vector.to("cpu", torch.float32)
    if vector.ndim == 1:
        vector = vector[None]
    if vector.ndim != 2 or vector.shape != (1, ARCFACE_DIM):
        raise InvalidInputError(
            f"arcface_embedding must have shape (512,) or (1, 512), got {tuple(vector.shape)}"
        )
    if not torch.isfinite(vector).all():
        raise InvalidInputError("arcface_embedding contains NaN or inf")
    return vector


def read_arcface_file(path: str | os.PathLike, argument: str | None = None) -> np.ndarray:
    """A raw ArcFace vector saved with numpy.save (as `echovideo face` writes it): (512,)
    float32. InputFileError naming the file when it is not such a file."""
    path = check_input_file(path, argument)
    named = f"{argument} {path}" if argument else str(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # not .npy, truncated, pickled objects
        raise InputFileError(f"{named} is not a .npy array file ({err})", path=path) from err
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise InputFileError(f"{named} is an .npz archive; give one vector saved with numpy.save", path=path)
    try:
        return check_arcface(array)[0].numpy()
    except InvalidInputError as err:
        raise InputFileError(f"{named}: {err}", path=path) from None


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
