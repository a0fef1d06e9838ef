"""The reference data's integer weight recipe ("hashinit"), used to rebuild tensors not stored.

The tiny reference transformer keeps a full-size face resampler (190 MB in float32), so the
reference folder stores a recipe instead of those 51 tensors: each value is a pure function
of (tag, key, flat index). Stated in the recipe file (face_prj_wofc_recipe.json, "recipe"); implemented here with numpy
uint64 arithmetic, whose wrap-around is the recipe's "modulo 2**64".
"""
from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def key_seed(tag: str, key: str) -> int:
    """CRC-32 of `tag + "/" + key` (UTF-8), unsigned."""
    return zlib.crc32(f"{tag}/{key}".encode("utf-8")) & 0xFFFFFFFF


def recipe_values(tag: str, key: str, shape: tuple[int, ...], base: float) -> np.ndarray:
    """The tensor for `key`: float32, C order, base + (u - 2**19) * 2**-23 with u a 20-bit hash."""
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    z = (np.uint64(key_seed(tag, key)) << np.uint64(32)) | np.arange(numel, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(44)).astype(np.int64)
    values = (u - (1 << 19)).astype(np.float64) * 2.0**-23 + base
    return values.astype(np.float32).reshape(shape)


def sha256_f32le(array: np.ndarray | torch.Tensor) -> str:
    """SHA-256 of little-endian float32 bytes in C order (the recipe file's checksum)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().float().numpy()
    return hashlib.sha256(np.ascontiguousarray(array, dtype="<f4").tobytes()).hexdigest()


def recipe_tensors(recipe_json: str | Path, *, verify: bool = True) -> dict[str, torch.Tensor]:
    """Rebuild every tensor the recipe file lists; with `verify`, check each SHA-256."""
    recipe = json.loads(Path(recipe_json).read_text())
    tag = recipe["tag"]
    out: dict[str, torch.Tensor] = {}
    for entry in recipe["tensors"]:
        values = recipe_values(tag, entry["key"], tuple(entry["shape"]), float(entry["base"]))
        if verify and sha256_f32le(values) != entry["sha256_f32le"]:
            raise ValueError(f"recipe tensor {entry['key']} does not match its SHA-256")
        out[entry["key"]] = torch.from_numpy(values)
    return out


def recipe_base(recipe: dict, key: str) -> float:
    """Base value of `key` under the recipe: 1.0 for listed LayerNorm weights, else 0.0."""
    return 1.0 if key in set(recipe.get("layernorm_weight_keys_base_1", ())) else 0.0
