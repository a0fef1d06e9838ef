"""A tensor as a weight file keeps it (`StoredTensor`), and the conversions between formats.

One tensor at a time is the unit of every loader and writer in this package: a source hands
out `StoredTensor`s, `store` re-encodes one into the target format, `linear_layer` builds a
layer around one. Nothing here ever holds more than the tensor at hand.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from gguf import GGMLQuantizationType
from torch import nn

from echovideo_core.weights.formats import WeightsFormat
from echovideo_core.weights.fp8 import FP8_DTYPE, Fp8Linear, dequantize_fp8, quantize_fp8
from echovideo_core.weights.gguf_linear import GGUFLinear
from echovideo_core.weights.kquants import FLOAT_TYPES, Q8_0, dequantize, fits, quantize

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredTensor:
    """shape: the logical shape; encoding: "float" (data is the tensor, any float dtype),
    "fp8" (data float8_e4m3fn, value = data * scale, scale a float32 0-d tensor) or "gguf"
    (data uint8 blocks of `qtype`, (rows..., bytes per row))."""

    shape: tuple[int, ...]
    data: torch.Tensor
    encoding: str = "float"
    scale: torch.Tensor | None = None
    qtype: GGMLQuantizationType | None = None

    @classmethod
    def plain(cls, tensor: torch.Tensor, scale: torch.Tensor | None = None) -> "StoredTensor":
        """A tensor read from a safetensors file: fp8 e4m3 ones (with their scale, else 1) are "fp8"."""
        if tensor.dtype == FP8_DTYPE:
            return cls(tuple(tensor.shape), tensor, "fp8", torch.ones(()) if scale is None else scale.reshape(()).float())
        return cls(tuple(tensor.shape), tensor)

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    def dequantize(self, dtype: torch.dtype) -> torch.Tensor:
        """The values in `dtype` (floats are only cast, integer tensors pass unchanged)."""
        if self.encoding == "fp8":
            return dequantize_fp8(self.data, self.scale, dtype)
        if self.encoding == "gguf":
            return dequantize(self.data, self.qtype, self.shape, dtype)
        return self.data.to(dtype) if self.data.is_floating_point() else self.data


def gguf_type_for(shape: tuple[int, ...], wanted: GGMLQuantizationType) -> GGMLQuantizationType | None:
    """The GGUF type a tensor of `shape` is written in when `wanted` is asked: `wanted` when its
    rows split into its blocks, else Q8_0 when they split into 32s, else None (kept floating
    point). Only toy-sized models have such rows: every large layer of the release is 256-aligned."""
    for candidate in (wanted, Q8_0):
        if fits(shape, candidate):
            return candidate
    return None


def to_gguf(tensor: StoredTensor, wanted: GGMLQuantizationType, fallback_dtype: torch.dtype) -> StoredTensor:
    """`tensor` as GGUF blocks of gguf_type_for(its shape, wanted) (floating point in
    `fallback_dtype` when no block type fits)."""
    qtype = gguf_type_for(tensor.shape, wanted)
    if qtype is None:
        return StoredTensor(tensor.shape, tensor.dequantize(fallback_dtype))
    if tensor.encoding == "gguf" and tensor.qtype == qtype:
        return tensor
    if qtype != wanted:
        logger.debug("rows of %s values do not split into %s blocks: Q8_0 instead", tensor.shape[-1], wanted.name)
    values = tensor.data if tensor.encoding == "float" else tensor.dequantize(torch.float32)
    return StoredTensor(tensor.shape, quantize(values, qtype), "gguf", qtype=qtype)


def store(tensor: StoredTensor, fmt: WeightsFormat) -> StoredTensor:
    """One large layer's weight in `fmt`'s storage (already-stored forms pass unchanged:
    loading an fp8 file as fp8 or a GGUF file as gguf reproduces its bytes exactly)."""
    if fmt.low_bit is None:
        return StoredTensor(tensor.shape, tensor.dequantize(fmt.dtype))
    if fmt.low_bit == "fp8":
        if tensor.encoding == "fp8":
            return tensor
        stored, scale = quantize_fp8(tensor.data if tensor.encoding == "float" else tensor.dequantize(torch.float32))
        return StoredTensor(tensor.shape, stored, "fp8", scale)
    if fmt.low_bit == "gguf":
        if tensor.encoding != "gguf":
            return StoredTensor(tensor.shape, tensor.dequantize(fmt.dtype))
        if tensor.qtype in FLOAT_TYPES:
            return StoredTensor(tensor.shape, tensor.dequantize(fmt.dtype))
        return tensor
    if fmt.gguf_type is not None:
        return to_gguf(tensor, GGMLQuantizationType[fmt.gguf_type], fmt.dtype)
    raise ValueError(f"{fmt.name} weights are not a stored encoding")  # int8 lives in torchao modules only


def linear_layer(weight: StoredTensor, bias: torch.Tensor | None, fmt: WeightsFormat) -> nn.Linear:
    """An nn.Linear (or a subclass keeping the weight low-bit) over one stored weight."""
    if fmt.low_bit == "int8":
        from echovideo_core.weights.int8 import int8_linear

        return int8_linear(weight.dequantize(fmt.dtype), bias, fmt.dtype)
    stored = store(weight, fmt)
    if stored.encoding == "fp8":
        return Fp8Linear(stored.data, stored.scale, bias, fmt.dtype)
    if stored.encoding == "gguf":
        return GGUFLinear(stored.data, stored.qtype, stored.shape, bias, fmt.dtype)
    out_features, in_features = stored.shape
    layer = nn.Linear(in_features, out_features, bias=bias is not None, device="meta")
    layer.weight = nn.Parameter(stored.data.to(fmt.dtype), requires_grad=False)
    if bias is not None:
        layer.bias = nn.Parameter(bias.to(fmt.dtype), requires_grad=False)
    return layer
