"""The weight formats by name: what `--weights`, `echovideo convert --to` and the API accept.

A format says how the large linear layers wait in memory (`low_bit`) and in which dtype
everything else is kept and every layer computes (`dtype`):

| name        | large linear layers                        | everything else, compute |
|-------------|--------------------------------------------|--------------------------|
| bf16/fp16/fp32 | that dtype                              | that dtype               |
| fp8         | float8_e4m3fn + one float32 scale per tensor | bf16                   |
| int8        | int8 + one scale per output row (torchao)  | bf16                     |
| gguf        | the blocks a .gguf file holds, as they are | bf16                     |
| gguf-q8_0 / gguf-q5_k / gguf-q4_k | GGUF blocks of that type     | bf16                     |

Which layers are "large" is `policy.py`'s rule (the DiT's transformer blocks; T5's encoder
blocks); the IITF layers, norms, biases, embeddings and the patch/time/output layers keep
floating point. Low-bit formats compute in bf16 unless a `compute_dtype` is passed (the CPU
accuracy checks pass float32: bf16 matmuls are slow on CPUs without bf16 units).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from echovideo_core.dtypes import PRECISIONS
from echovideo_core.errors import InvalidInputError, MissingPackageError

GGUF_TYPES: dict[str, str] = {"gguf-q8_0": "Q8_0", "gguf-q5_k": "Q5_K", "gguf-q4_k": "Q4_K"}
LOW_BIT_NAMES: tuple[str, ...] = ("fp8", "int8", "gguf", *GGUF_TYPES)
TRANSFORMER_WEIGHTS: tuple[str, ...] = (*PRECISIONS, *LOW_BIT_NAMES)
T5_WEIGHTS: tuple[str, ...] = (*PRECISIONS, "fp8", "int8")
CONVERT_TARGETS: tuple[str, ...] = ("fp8", *GGUF_TYPES)
GGUF_SUFFIX = ".gguf"


def require_package(module: str, purpose: str, install: str) -> None:
    """MissingPackageError naming the option and the pip line, before anything loads: the
    plain-float path runs without the optional packages, the options that need them say so."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingPackageError(f"{purpose} needs the {module} package, which is not installed here: {install}")


def require_low_bit_packages(name: str | None, *, gguf_file: bool = False) -> None:
    """The packages the weights format `name` (or a .gguf file) needs: gguf for every low-bit
    format (the layer-by-layer loader they share handles GGUF blocks too), torchao for int8."""
    if gguf_file or (name is not None and name in LOW_BIT_NAMES):
        require_package("gguf", f"--weights {name}" if name else "a .gguf file", "pip install 'gguf>=0.19'")
    if name == "int8":
        require_package("torchao", "--weights int8", "pip install torchao==0.18.0")


@dataclass(frozen=True)
class WeightsFormat:
    """name: one of TRANSFORMER_WEIGHTS; dtype: floating tensors and compute;
    low_bit: None (plain floats), "fp8", "int8", "gguf" (keep a file's blocks) or a GGUF
    type name ("Q8_0", "Q5_K", "Q4_K") to quantise to."""

    name: str
    dtype: torch.dtype
    low_bit: str | None

    @property
    def gguf_type(self) -> str | None:
        return GGUF_TYPES.get(self.name)


def weights_format(name: str, *, compute_dtype: torch.dtype | None = None,
                   valid: tuple[str, ...] = TRANSFORMER_WEIGHTS, what: str = "weights") -> WeightsFormat:
    """The format called `name`; an unknown name raises InvalidInputError listing `valid`.

    `compute_dtype` overrides bf16 for the low-bit formats (plain formats compute in their own).
    """
    if name not in valid:
        raise InvalidInputError(f"unknown {what} {name!r}: choose one of {', '.join(valid)}")
    if name in PRECISIONS:
        return WeightsFormat(name, PRECISIONS[name], None)
    dtype = compute_dtype or torch.bfloat16
    if name in GGUF_TYPES:
        return WeightsFormat(name, dtype, GGUF_TYPES[name])
    return WeightsFormat(name, dtype, name)
