"""Names of floating dtypes, one vocabulary for the CLI, the nodes and the API.

Canonical short names (`bf16`, `fp16`, `fp32`, as ComfyUI users know them) and the long
torch spellings (`bfloat16`, `float16`, `float32`) are both accepted everywhere. The names
need no torch (the CLI lists them before importing it); `PRECISIONS`, the {name: torch
dtype} table, is built when first used (it imports torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from echovideo_core.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    PRECISIONS: dict[str, torch.dtype]

TORCH_NAMES: dict[str, str] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
PRECISION_NAMES: tuple[str, ...] = tuple(TORCH_NAMES)
LONG_NAMES: dict[str, str] = {long: short for short, long in TORCH_NAMES.items()}
DTYPE_NAMES: tuple[str, ...] = PRECISION_NAMES + tuple(LONG_NAMES)


def __getattr__(name: str) -> Any:
    if name == "PRECISIONS":  # {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        import torch

        table = {short: getattr(torch, long) for short, long in TORCH_NAMES.items()}
        globals()[name] = table
        return table
    raise AttributeError(f"module 'echovideo_core.dtypes' has no attribute {name!r}")


def dtype_from_name(name: str | torch.dtype, *, what: str = "precision") -> torch.dtype:
    """"bf16" / "bfloat16" / torch.bfloat16 ... -> the torch dtype (InvalidInputError naming `what`)."""
    import torch

    dtypes = __getattr__("PRECISIONS")
    if isinstance(name, torch.dtype) and name in dtypes.values():
        return name
    key = LONG_NAMES.get(name, name) if isinstance(name, str) else None
    if key not in dtypes:
        raise InvalidInputError(f"{what} must be one of {', '.join(DTYPE_NAMES)}; got {name!r}")
    return dtypes[key]


def precision_dtype(name: str) -> torch.dtype:
    """The nodes' precision widget -> torch dtype."""
    return dtype_from_name(name)


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 -> "bf16" (the short name of one of the PRECISIONS)."""
    names = {value: short for short, value in __getattr__("PRECISIONS").items()}
    if dtype not in names:
        raise InvalidInputError(f"dtype must be one of {', '.join(map(str, names))}; got {dtype}")
    return names[dtype]
