"""EchoVideo LoRA files: the format, and merging one into the DiT with a strength.

Inference owns this module (training writes the same format through `save_lora`).

File layout (`.safetensors`), written by `lora_tensors` + `save_lora`:

- `<module>.lora_A.weight` (r, in) and `<module>.lora_B.weight` (out, r) for each adapted
  DiT attention linear (`transformer_blocks.N.attn1.to_q`, ...); the update is
  `W += strength * alpha / r * B @ A`.
- `iitf.<param>` full tensors of the IITF layers (`face_proj.weight`, ...) when they were
  trained too (mode `iitf_lora`): applied as `W = W0 + strength * (W1 - W0)`, so strength
  scales the whole fine-tune consistently and 0 gives the base model back.
- metadata `format=echovideo-lora`, `rank`, `alpha`.

Also read: diffusers / peft exports (`transformer.` or `base_model.model.` prefixes) and
kohya-style `lora_down` / `lora_up` names with an optional per-module `.alpha` tensor.
Applying merges into the weights in place: no peft needed at inference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import save_file
from torch import nn

from echovideo_core.atomic import atomic_path
from echovideo_core.errors import LoraMismatchError
from echovideo_core.loading.state_dict import read_state_dict

logger = logging.getLogger(__name__)

LORA_FORMAT = "echovideo-lora"
IITF_KEY_PREFIX = "iitf."
_PREFIXES = ("base_model.model.", "transformer.", "diffusion_model.", "model.diffusion_model.")
_A_NAMES = (".lora_A.weight", ".lora_down.weight")
_B_NAMES = (".lora_B.weight", ".lora_up.weight")


@dataclass(frozen=True)
class LoraApplied:
    """What `apply_lora` changed: adapted linear modules and replaced IITF tensors."""

    modules: int
    iitf_tensors: int
    strength: float


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _split(key: str) -> tuple[str, str] | None:
    """'x.y.lora_A.weight' -> ('x.y', 'A'); None for other keys."""
    for kind, names in (("A", _A_NAMES), ("B", _B_NAMES)):
        for name in names:
            if key.endswith(name):
                return key[: -len(name)], kind
    return None


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a LoRA file (the library's one reader: safetensors or weights-only)."""
    return read_state_dict(path)


def _group(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]):
    """-> {module: (A, B, scale)}, {param: tensor}, unknown keys."""
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    alphas: dict[str, float] = {}
    iitf: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in tensors.items():
        if key.startswith(IITF_KEY_PREFIX):
            iitf[key[len(IITF_KEY_PREFIX):]] = tensor
            continue
        name = _strip(key)
        if name.endswith(".alpha"):
            alphas[name[: -len(".alpha")]] = float(tensor)
            continue
        split = _split(name)
        if split is None:
            unknown.append(key)
            continue
        pairs.setdefault(split[0], {})[split[1]] = tensor
    default_alpha = float(metadata["alpha"]) if "alpha" in metadata else None
    modules = {}
    for module, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            unknown.append(f"{module} (only lora_{''.join(ab)})")
            continue
        rank = ab["A"].shape[0]
        alpha = alphas.get(module, default_alpha if default_alpha is not None else rank)
        modules[module] = (ab["A"], ab["B"], alpha / rank)
    return modules, iitf, unknown


@torch.no_grad()
def apply_lora(model: nn.Module, path: str | Path, strength: float = 1.0) -> LoraApplied:
    """Merge the LoRA file at `path` into `model`'s weights, scaled by `strength` (in place).

    Every key must find its module/parameter with matching shapes, else LoraMismatchError
    names them (a LoRA for another model must not half-apply).
    """
    tensors, metadata = read_lora(path)
    modules, iitf, unknown = _group(tensors, metadata)
    named_modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    problems = list(unknown)
    for module, (a, b, _) in modules.items():
        target = named_modules.get(module)
        if not isinstance(target, nn.Linear):
            problems.append(f"{module}: no such linear layer")
        elif (b.shape[0], a.shape[1]) != tuple(target.weight.shape) or a.shape[0] != b.shape[1]:
            problems.append(f"{module}: LoRA {tuple(b.shape)}x{tuple(a.shape)} vs weight {tuple(target.weight.shape)}")
    for name, value in iitf.items():
        if name not in params:
            problems.append(f"{IITF_KEY_PREFIX}{name}: no such parameter")
        elif value.shape != params[name].shape:
            problems.append(f"{IITF_KEY_PREFIX}{name}: shape {tuple(value.shape)} vs {tuple(params[name].shape)}")
    if problems:
        shown = "; ".join(problems[:10]) + (f" ... (+{len(problems) - 10} more)" if len(problems) > 10 else "")
        raise LoraMismatchError(f"LoRA {path} does not fit this model: {shown}")
    for module, (a, b, scale) in modules.items():
        weight = named_modules[module].weight
        delta = (b.float() @ a.float()) * (scale * strength)
        weight.add_(delta.to(weight.device, weight.dtype))
    for name, value in iitf.items():
        param = params[name]
        param.lerp_(value.to(param.device, param.dtype), float(strength))
    logger.info("applied LoRA %s at strength %.3g: %d linear layers, %d IITF tensors",
                path, strength, len(modules), len(iitf))
    return LoraApplied(modules=len(modules), iitf_tensors=len(iitf), strength=float(strength))


def save_lora(tensors: Mapping[str, torch.Tensor], path: str | Path, *, rank: int, alpha: float) -> Path:
    """Write a LoRA file atomically (temporary file, then rename)."""
    path = Path(path)
    data = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(data, str(tmp), metadata={"format": LORA_FORMAT, "rank": str(rank), "alpha": str(alpha)})
    return path
