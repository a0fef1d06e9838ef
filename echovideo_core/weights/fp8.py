"""fp8 weights: float8_e4m3fn storage with one float32 scale per tensor, compute in bf16.

The layout is ComfyUI's "scaled fp8" (`*_fp8_scaled.safetensors`): a layer's `weight` is
stored as float8_e4m3fn, its `scale_weight` (a float32 scalar) multiplies it back, and a
`scaled_fp8` marker tensor (empty, float8_e4m3fn) tells readers the file uses scales.
Newer ComfyUI files name the scale `weight_scale` and may add `input_scale` / `comfy_quant`
entries; both spellings are read, ours is written as the older, more widely read one.
A plain float8_e4m3fn tensor without a scale (ComfyUI's unscaled `*_fp8_e4m3fn` files)
has scale 1.

Why by hand: torchao's float8 weight-only path scales per row and targets CUDA float8
matmuls; the per-tensor layout that ComfyUI users already have on disk is one multiply.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448
MARKER_KEY = "scaled_fp8"
SCALE_SUFFIXES = (".scale_weight", ".weight_scale")
"""Where a layer's weight scale is kept: `<layer>.scale_weight` (written) or `<layer>.weight_scale`."""
IGNORED_SUFFIXES = (".scale_input", ".input_scale", ".comfy_quant")
"""Activation scales and per-layer quantisation notes: we compute in bf16 and read neither."""


def quantize_fp8(weight: torch.Tensor, chunk_values: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor]:
    """A float tensor -> (float8_e4m3fn tensor, float32 0-d scale) with weight ~= fp8 * scale.

    The scale maps the tensor's largest magnitude to fp8's largest finite value (448), so
    nothing saturates; an all-zero tensor gets scale 1. Converted `chunk_values` at a time,
    so the float32 working copy stays small next to a large layer.
    """
    weight = weight.detach()
    if weight.numel() == 0:
        return torch.empty(weight.shape, dtype=FP8_DTYPE, device=weight.device), torch.ones((), device=weight.device)
    low, high = torch.aminmax(weight)
    largest = torch.maximum(-low.float(), high.float())
    scale = torch.where(largest > 0, largest / FP8_MAX, torch.ones((), device=weight.device))
    flat = weight.reshape(-1)
    stored = torch.empty(flat.shape, dtype=FP8_DTYPE, device=weight.device)
    for start in range(0, flat.numel(), chunk_values):
        part = flat[start:start + chunk_values].float().div_(scale).clamp_(-FP8_MAX, FP8_MAX)
        stored[start:start + chunk_values] = part.to(FP8_DTYPE)
    return stored.reshape(weight.shape), scale.reshape(()).to(torch.float32)


def dequantize_fp8(stored: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32,
                   chunk_values: int = 1 << 22) -> torch.Tensor:
    """fp8 * scale in `dtype`: each product formed in float32, then rounded once; converted
    `chunk_values` at a time so a forward's temporary is one layer in `dtype`, not in float32."""
    flat = stored.reshape(-1)
    out = torch.empty(flat.shape, dtype=dtype, device=stored.device)
    scale = scale.float()
    for start in range(0, flat.numel(), chunk_values):
        out[start:start + chunk_values] = flat[start:start + chunk_values].float().mul_(scale)
    return out.reshape(stored.shape)


class Fp8Linear(nn.Linear):
    """nn.Linear whose weight waits in float8_e4m3fn with a per-tensor scale.

    State dict: `weight` (fp8), `scale_weight` (float32 scalar), `bias` (compute dtype),
    exactly ComfyUI's scaled-fp8 entries for a layer. Each forward dequantises the weight to
    `compute_dtype` for that one matmul (a temporary of one layer). A subclass of nn.Linear
    so offloading hooks and module walks that look for linear layers still find it.
    """

    def __init__(self, stored: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                 compute_dtype: torch.dtype = torch.bfloat16) -> None:
        nn.Module.__init__(self)
        self.out_features, self.in_features = stored.shape
        self.compute_dtype = compute_dtype
        self.weight = nn.Parameter(stored, requires_grad=False)
        self.register_buffer("scale_weight", scale.reshape(()).to(torch.float32))
        self.bias = None if bias is None else nn.Parameter(bias.to(compute_dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = dequantize_fp8(self.weight, self.scale_weight, self.compute_dtype)
        return F.linear(x.to(self.compute_dtype), weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, fp8 e4m3 per-tensor scale"
