"""GGUFLinear: a linear layer whose weight stays as GGUF blocks, dequantised per forward."""
from __future__ import annotations

import torch
from gguf import GGMLQuantizationType
from torch import nn
from torch.nn import functional as F

from echovideo_core.weights.kquants import dequantize


class GGUFLinear(nn.Linear):
    """nn.Linear holding its weight as GGUF blocks (uint8, (out, bytes per row)).

    Each forward decodes the weight to `compute_dtype` on the weight's device (one layer's
    temporary), so the model's resident size is the file's. A subclass of nn.Linear so
    offloading hooks and module walks still find it; `weight.shape` is the byte shape.
    """

    def __init__(self, blocks: torch.Tensor, qtype: GGMLQuantizationType, shape: tuple[int, int],
                 bias: torch.Tensor | None, compute_dtype: torch.dtype = torch.bfloat16) -> None:
        nn.Module.__init__(self)
        self.out_features, self.in_features = shape
        self.qtype = GGMLQuantizationType(qtype)
        self.compute_dtype = compute_dtype
        self.weight = nn.Parameter(blocks, requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.to(compute_dtype), requires_grad=False)

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize(self.weight, self.qtype, (self.out_features, self.in_features), self.compute_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.compute_dtype), self.dequantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, gguf {self.qtype.name}"
