"""int8 weight-only linear layers through torchao (per-row scales, compute in the input dtype).

torchao 0.18 works with torch 2.13 on the CPU: `Int8WeightOnlyConfig` turns a linear
layer's weight into an `Int8Tensor` (int8 values + one float32 scale per output row).
It is imported only when int8 is asked for (the import takes seconds), with its logger
quietened during the import: the CUDA kernels it ships cannot load on a CPU build of torch
and it says so once per kernel, which would read like an error to a user.
"""
from __future__ import annotations

import logging
from functools import lru_cache

import torch
from torch import nn

from echovideo_core.weights.formats import require_low_bit_packages

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _torchao():
    torchao_logger = logging.getLogger("torchao")
    level = torchao_logger.level
    torchao_logger.setLevel(logging.ERROR)
    try:
        require_low_bit_packages("int8")
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    finally:
        torchao_logger.setLevel(level)
    # set_inductor_config=False: quantize_ must not change torch's global compiler settings.
    return quantize_, Int8WeightOnlyConfig(set_inductor_config=False)


def int8_linear(weight: torch.Tensor, bias: torch.Tensor | None, compute_dtype: torch.dtype) -> nn.Linear:
    """An nn.Linear with `weight` (float, (out, in)) stored as int8 per-row by torchao."""
    quantize_, config = _torchao()
    out_features, in_features = weight.shape
    linear = nn.Linear(in_features, out_features, bias=bias is not None, device="meta", dtype=compute_dtype)
    linear.weight = nn.Parameter(weight.to(compute_dtype), requires_grad=False)
    if bias is not None:
        linear.bias = nn.Parameter(bias.to(compute_dtype), requires_grad=False)
    quantize_(linear, config)
    return linear.requires_grad_(False)
