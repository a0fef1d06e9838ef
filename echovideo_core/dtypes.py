"""Names of floating dtypes, one vocabulary for the CLI, the nodes and the API.

Canonical short names (`bf16`, `fp16`, `fp32`, as ComfyUI users know them) and the long
torch spellings (`bfloat16`, `float16`, `float32`) are both accepted everywhere.
"""
from __future__ import annotations

import torch

from echovideo_core.errors import InvalidInputError

PRECISIONS: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
LONG_NAMES: dict[str, str] = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
DTYPE_NAMES: tuple[str, ...] = tuple(PRECISIONS) + tuple(LONG_NAMES)


def dtype_from_name(name: str | torch.dtype, *, what: str = "precision") -> torch.dtype:
    """"bf16" / "bfloat16" / torch.bfloat16 ... -> the torch dtype (InvalidInputError naming `what`)."""
    if isinstance(name, torch.dtype) and name in PRECISIONS.values():
        return name
    key = LONG_NAMES.get(name, name) if isinstance(name, str) else None
    if key not in PRECISIONS:
        raise InvalidInputError(f"{what} must be one of {', '.join(DTYPE_NAMES)}; got {name!r}")
    return PRECISIONS[key]


def precision_dtype(name: str) -> torch.dtype:
    """The nodes' precision widget -> torch dtype."""
    return dtype_from_name(name)
