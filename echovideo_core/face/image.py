"""Any user photo -> RGB uint8 (H, W, 3) with the long side at most 1024 (docs/design.md 5.1).

Accepted: a path (str / os.PathLike), a PIL image, a numpy array (H, W, 3|4) or (H, W)
uint8, or a torch tensor in ComfyUI's IMAGE layout (B, H, W, C) float in [0, 1] with B == 1
(or (H, W, C)). EXIF orientation is applied. Transparent pixels are composited onto white
(a cut-out portrait keeps a clean, detector-friendly background), greyscale is replicated to
three channels and CMYK / palette / 16-bit images are converted by Pillow.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from echovideo_core.errors import InvalidInputError
from echovideo_core.face.errors import ImageLoadError
from echovideo_core.paths import check_input_file

logger = logging.getLogger(__name__)

MAX_LONG_SIDE = 1024
ImageInput = Union[str, os.PathLike, Image.Image, np.ndarray, Any]  # Any: torch.Tensor


def open_image(path: str | os.PathLike, argument: str | None = None) -> Image.Image:
    """The decoded image at `path` (the one place image files are opened): a missing file is
    a MissingInputError, anything Pillow cannot decode (a truncated JPEG, a text file named
    .png, a decompression bomb) an ImageLoadError naming the file and `argument`."""
    path = check_input_file(path, argument)
    named = f"{argument} {path}" if argument else str(path)
    try:
        image = Image.open(path)
        image.load()  # decode now so truncated files fail here, with the path in the message
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(f"cannot decode the image {named}: {err}", path=path) from err
    return image


def read_identity_image(path: str | os.PathLike, argument: str | None = None) -> np.ndarray:
    """A prepared identity image file as (H, W, 3) uint8 RGB, pixels as stored (no EXIF turn,
    no resize: it was written by face preparation)."""
    return np.asarray(open_image(path, argument).convert("RGB"), dtype=np.uint8)


def _pil_to_rgb(image: Image.Image) -> np.ndarray:
    try:
        image = ImageOps.exif_transpose(image)
    except Exception as err:  # broken EXIF blocks: keep the pixels, say so  # noqa: BLE001
        logger.warning("ignoring unreadable EXIF orientation: %s", err)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        raise InvalidInputError(
            f"numpy photos must be uint8 (H, W, 3), got dtype {array.dtype}; "
            "float tensors in [0, 1] are accepted as torch tensors (ComfyUI IMAGE)"
        )
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(array, mode="RGBA"))
    raise InvalidInputError(f"numpy photo must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}")


def _tensor_to_rgb(tensor: Any) -> np.ndarray:
    values = tensor.detach().float().cpu().numpy()
    if values.ndim == 4:
        if values.shape[0] != 1:
            raise InvalidInputError(
                f"a batch of {values.shape[0]} images was given where one photo is expected; "
                "use prepare_many for several photos of one person"
            )
        values = values[0]
    if values.ndim != 3 or values.shape[2] not in (1, 3, 4):
        raise InvalidInputError(f"torch photo must be (B, H, W, C) or (H, W, C) with C in 1, 3, 4, got {tuple(tensor.shape)}")
    as_uint8 = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return _array_to_rgb(as_uint8)


def shrink_long_side(rgb: np.ndarray, max_long_side: int = MAX_LONG_SIDE) -> np.ndarray:
    """Downscale (area filter) so max(H, W) <= max_long_side; smaller photos are untouched."""
    height, width = rgb.shape[:2]
    long_side = max(height, width)
    if long_side <= max_long_side:
        return rgb
    scale = max_long_side / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def load_rgb(image: ImageInput, max_long_side: int = MAX_LONG_SIDE) -> np.ndarray:
    """The photo as an (H, W, 3) uint8 RGB array, EXIF-rotated, long side <= max_long_side."""
    if isinstance(image, (str, os.PathLike)):
        rgb = _pil_to_rgb(open_image(image))
    elif isinstance(image, Image.Image):
        rgb = _pil_to_rgb(image)
    elif isinstance(image, np.ndarray):
        rgb = _array_to_rgb(image)
    elif type(image).__module__.startswith("torch"):
        rgb = _tensor_to_rgb(image)
    else:
        raise InvalidInputError(
            f"unsupported photo type {type(image).__name__}: give a path, a PIL image, "
            "a numpy (H, W, 3) uint8 array or a torch (B, H, W, C) float tensor in [0, 1]"
        )
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageLoadError(f"the photo is empty (shape {rgb.shape})")
    return shrink_long_side(rgb, max_long_side)
