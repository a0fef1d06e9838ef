"""Fill a model built on the meta device from a TensorSource, layer by layer, in a weights format.

This is how every low-bit model is made (loaded from a file, or built with random weights
for the benchmark): the model's skeleton has no storage; each large linear layer is read as
one stored tensor, re-encoded into the format (fp8 / int8 / GGUF blocks) and put in place
before the next is read; every other tensor is read and cast to the format's dtype. So the
process never holds more than the model in its storage format plus one layer in flight:
never a full bf16 or float32 copy first.

Which layers are "large" (low-bit) is a rule per model, here:
- the DiT: every nn.Linear inside `transformer_blocks` (attention q/k/v/out, feed-forward,
  and the adaLN modulation `norm1.linear` / `norm2.linear`): 98.7% of the 5.6B parameters.
  Kept in floating point: the IITF layers (face_proj, text_proj, face_info_proj,
  face_prj_wofc.*), the patch, time, final-norm and output layers, every norm, bias and
  1-D tensor: small, and where an error would reach every token or the identity directly.
- T5: every nn.Linear inside `encoder.block` except the ones transformers keeps out of
  reduced precision (`_keep_in_fp32_modules`: the feed-forward `wo`, whose input T5 casts to
  the weight's dtype); the embedding and relative-position bias stay floating point.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Callable

import torch
from torch import nn

from echovideo_core.loading import CheckpointMismatchError, compare_keys
from echovideo_core.weights.formats import WeightsFormat
from echovideo_core.weights.memory import trim_heap
from echovideo_core.weights.sources import TensorSource
from echovideo_core.weights.stored import linear_layer

logger = logging.getLogger(__name__)

LowBitRule = Callable[[str, nn.Module], bool]
"""(module name, module) -> whether the module's weight is stored low-bit."""


def transformer_low_bit(name: str, module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) and name.startswith("transformer_blocks.")


def t5_low_bit_rule(model: nn.Module) -> LowBitRule:
    kept = set(getattr(model, "_keep_in_fp32_modules", None) or ())

    def rule(name: str, module: nn.Module) -> bool:
        return isinstance(module, nn.Linear) and name.startswith("encoder.block.") and name.rsplit(".", 1)[-1] not in kept

    return rule


def low_bit_weight_keys(model: nn.Module, rule: LowBitRule) -> set[str]:
    """State-dict keys of the weights `rule` stores low-bit (the converter's plan)."""
    return {f"{name}.weight" for name, module in model.named_modules() if rule(name, module)}


def meta_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """{key: shape} as storage-less tensors, for the checks that look at `.shape`."""
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def check_keys(model: nn.Module, source: TensorSource, what: str) -> None:
    """Every key and shape of `model` in `source` and nothing else, or CheckpointMismatchError
    naming the keys (the one key report of loading.py)."""
    wanted = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    report = compare_keys(wanted, meta_shapes(source.shapes()))
    if not report.ok:
        raise CheckpointMismatchError(f"{source.description} does not fit {what}: {report.describe()}")


def _replace(model: nn.Module, name: str, layer: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)


def fill_layer_by_layer(model: nn.Module, source: TensorSource, fmt: WeightsFormat, rule: LowBitRule,
                        device: torch.device | str = "cpu") -> nn.Module:
    """Give every meta tensor of `model` its value from `source`, in `fmt`, on `device`.

    Low-bit layers (per `rule`, when `fmt` is low-bit) are replaced by layers keeping their
    weight in the format; tied parameters (one tensor under several names) stay tied and are
    read once. Keys are not checked here: call check_keys first.
    """
    device = torch.device(device)
    available = source.shapes()
    for name, module in list(model.named_modules()):
        if fmt.low_bit is not None and rule(name, module):
            bias = source.read(f"{name}.bias").dequantize(fmt.dtype) if module.bias is not None else None
            _replace(model, name, linear_layer(source.read(f"{name}.weight"), bias, fmt).to(device))
            trim_heap()
    tied: dict[int, list[tuple[nn.Module, str, str, bool]]] = defaultdict(list)
    for module_name, module in model.named_modules(remove_duplicate=False):
        prefix = f"{module_name}." if module_name else ""
        for kind in ("_parameters", "_buffers"):
            for attr, tensor in getattr(module, kind).items():
                if tensor is not None and tensor.is_meta:
                    tied[id(tensor)].append((module, attr, prefix + attr, kind == "_parameters"))
    for users in tied.values():
        key = next((k for _, _, k, _ in users if k in available), None)
        if key is None:
            raise CheckpointMismatchError(f"{source.description} has no tensor for {users[0][2]}")
        value = source.read(key).dequantize(fmt.dtype).to(device)
        shared = nn.Parameter(value, requires_grad=False) if users[0][3] else value
        for module, attr, _, is_parameter in users:
            getattr(module, "_parameters" if is_parameter else "_buffers")[attr] = shared
    return model.requires_grad_(False)
