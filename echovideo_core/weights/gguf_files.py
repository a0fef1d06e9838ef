"""GGUF files of the EchoVideo DiT (or any of our models): read lazily, written streaming.

Layout we write: `general.architecture` = "echovideo", the model config as JSON under
`echovideo.config` (so loading needs no config.json), the weights format under
`echovideo.weights`, and one tensor per state-dict key, named by the key. The large layers
are GGUF blocks (Q8_0 / Q5_K / Q4_K), everything else BF16. The gguf package parses headers
and writes them; tensor bytes are read with plain file reads (see sources.py: why).
"""
from __future__ import annotations

import json
import os
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

from echovideo_core.loading import CheckpointMismatchError, common_prefix
from echovideo_core.weights.kquants import FLOAT_TYPES, byte_shape
from echovideo_core.weights.stored import StoredTensor

logger = logging.getLogger(__name__)

ARCHITECTURE = "echovideo"
CONFIG_KEY = "echovideo.config"
WEIGHTS_KEY = "echovideo.weights"
_TORCH_TO_GGUF = {dtype: qtype for qtype, dtype in FLOAT_TYPES.items()}


@dataclass(frozen=True)
class _GGUFEntry:
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int
    nbytes: int


class GGUFSource:
    """The tensors of a .gguf file by key (a foreign prefix stripped); config from its metadata."""

    def __init__(self, path: str | Path, prefixes: Sequence[str] = ()) -> None:
        self.path = Path(path)
        try:
            reader = GGUFReader(self.path)
            fields = {name: field.contents() for name, field in reader.fields.items()
                      if name in ("general.architecture", CONFIG_KEY, WEIGHTS_KEY)}
            found = {t.name: _GGUFEntry(GGMLQuantizationType(t.tensor_type), tuple(int(d) for d in reversed(t.shape.tolist())),
                                        int(t.data_offset), int(t.n_bytes)) for t in reader.tensors}
        except (ValueError, OSError, KeyError) as err:
            raise CheckpointMismatchError(f"{self.path} is not a readable GGUF file ({err})") from err
        del reader  # drop the file mapping (see sources.py)
        prefix = common_prefix(list(found), tuple(prefixes))
        self._entries = {key[len(prefix):]: entry for key, entry in found.items()}
        self.architecture: str | None = fields.get("general.architecture")
        self.weights: str | None = fields.get(WEIGHTS_KEY)
        self.config: dict[str, Any] | None = json.loads(fields[CONFIG_KEY]) if CONFIG_KEY in fields else None
        arch = f" (GGUF architecture {self.architecture!r})" if self.architecture != ARCHITECTURE else ""
        self.description = f"{self.path}{arch}"

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {key: entry.shape for key, entry in self._entries.items()}

    def read(self, key: str) -> StoredTensor:
        entry = self._entries[key]
        raw = read_bytes(self.path, entry.offset, entry.nbytes)
        if entry.qtype in FLOAT_TYPES:
            return StoredTensor(entry.shape, raw.view(FLOAT_TYPES[entry.qtype]).reshape(entry.shape))
        return StoredTensor(entry.shape, raw.reshape(byte_shape(entry.shape, entry.qtype)), "gguf", qtype=entry.qtype)


@dataclass(frozen=True)
class PlannedTensor:
    """One tensor of a GGUF file to write: its key, logical shape and GGUF type."""

    key: str
    shape: tuple[int, ...]
    qtype: GGMLQuantizationType


def planned_bytes(plan: PlannedTensor) -> tuple[int, ...]:
    return byte_shape(plan.shape, plan.qtype)


def _as_bytes(tensor: StoredTensor, plan: PlannedTensor) -> np.ndarray:
    """The tensor's bytes in the planned type (uint8, byte shape); a mismatch is a bug upstream."""
    if plan.qtype in FLOAT_TYPES:
        values = tensor.dequantize(FLOAT_TYPES[plan.qtype]).contiguous()
        data = values.reshape(-1).view(torch.uint8)
    elif tensor.encoding == "gguf" and tensor.qtype == plan.qtype:
        data = tensor.data
    else:
        raise ValueError(f"{plan.key}: planned as {plan.qtype.name} but produced as {tensor.encoding}")
    return data.reshape(planned_bytes(plan)).numpy()


def write_gguf(path: Path, plans: Sequence[PlannedTensor], produce: Callable[[str], StoredTensor],
               *, config: dict[str, Any], weights: str, on_tensor: Callable[[int, int], None] | None = None) -> None:
    """Write a GGUF file, asking `produce(key)` for one tensor at a time, in `plans` order.

    The header (every tensor's name, type and shape) is written first, then each tensor's
    bytes as soon as it is produced: memory holds one tensor. `path` is written in place;
    callers pass a temporary path (atomic_path).
    """
    writer = GGUFWriter(path=None, arch=ARCHITECTURE)
    writer.add_string(CONFIG_KEY, json.dumps(config))
    writer.add_string(WEIGHTS_KEY, weights)
    for plan in plans:
        nbytes = int(np.prod(planned_bytes(plan)))
        writer.add_tensor_info(plan.key, planned_bytes(plan), np.dtype(np.uint8), nbytes, raw_dtype=plan.qtype)
    try:
        writer.write_header_to_file(path=Path(path))
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for index, plan in enumerate(plans):
            writer.write_tensor_data(_as_bytes(produce(plan.key), plan))
            if on_tensor is not None:
                on_tensor(index + 1, len(plans))
    finally:
        writer.close()


def gguf_float_type(dtype: torch.dtype) -> GGMLQuantizationType:
    """The GGUF type of a floating tensor kept unquantised (BF16 for bf16, ...)."""
    return _TORCH_TO_GGUF[dtype]


def read_bytes(path: Path, offset: int, nbytes: int) -> torch.Tensor:
    """`nbytes` of `path` from `offset` as a fresh uint8 tensor (a plain read, no mapping)."""
    out = torch.empty(nbytes, dtype=torch.uint8)
    view = memoryview(out.numpy()).cast("B")
    with open(path, "rb", buffering=0) as handle:
        done = 0
        while done < nbytes:
            got = os.preadv(handle.fileno(), [view[done:]], offset + done)
            if got == 0:
                raise CheckpointMismatchError(f"{path} ends before the tensor at byte {offset} ({nbytes} bytes)")
            done += got
    return out
