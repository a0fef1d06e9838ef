"""Write a safetensors file one tensor at a time.

Why by hand: `safetensors.torch.save_file` takes every tensor of the file at once, and our
converter must never hold a whole model. The format is simple and documented: an 8-byte
little-endian header length, a JSON header ({key: {dtype, shape, data_offsets}} plus
`__metadata__`, padded with spaces to a multiple of 8), then the tensors' bytes in order.
Files written here are read back with `safe_open` in the tests.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


@dataclass(frozen=True)
class TensorSlot:
    """One tensor of the file to write: key, dtype and shape (known before its data)."""

    key: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        count = 1
        for size in self.shape:
            count *= size
        return count * torch.empty((), dtype=self.dtype).element_size()


def write_safetensors_streaming(path: Path, slots: Sequence[TensorSlot], produce: Callable[[str], torch.Tensor],
                                metadata: Mapping[str, str] | None = None) -> None:
    """Write `slots` to `path` (in place: callers pass atomic_path's temporary), asking
    `produce(key)` for each tensor in order; a produced tensor must match its slot."""
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for slot in slots:
        header[slot.key] = {"dtype": DTYPE_NAMES[slot.dtype], "shape": list(slot.shape),
                            "data_offsets": [offset, offset + slot.nbytes]}
        offset += slot.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for slot in slots:
            tensor = produce(slot.key)
            if tensor.dtype != slot.dtype or tuple(tensor.shape) != slot.shape:
                raise ValueError(f"{slot.key}: produced {tensor.dtype} {list(tensor.shape)}, "
                                 f"planned {slot.dtype} {list(slot.shape)}")
            handle.write(memoryview(tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()))
