"""Which parameters train (IITF, IITF + LoRA, full), the LoRA injection, and the EMA copy.

`iitf`: only the four IITF layers (`face_proj`, `text_proj`, `face_info_proj`,
`face_prj_wofc`) learn; the DiT is frozen. `iitf_lora`: the same plus a peft LoRA on every
DiT block's `attn1` projections (never on the resampler's own attention). `full`: everything.
"""
from __future__ import annotations

import logging
import re
from typing import Iterator, Mapping

import torch
from torch import nn

from echovideo_core.training.config import IITF_PREFIXES, TrainableConfig
from echovideo_core.lora import IITF_KEY_PREFIX

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"


def lora_target_regex(targets: tuple[str, ...]) -> str:
    """peft full-match regex: the named linears of each DiT block's attention only."""
    names = "|".join(re.escape(t) for t in targets)
    return rf"transformer_blocks\.\d+\.attn1\.({names})"


def is_iitf(name: str) -> bool:
    return name.startswith(IITF_PREFIXES)


def configure_trainable(model: nn.Module, cfg: TrainableConfig) -> list[str]:
    """Freeze/unfreeze (and inject LoRA) in place; returns the trainable parameter names."""
    if cfg.mode == "iitf_lora":
        from peft import LoraConfig

        model.add_adapter(LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha,
                                     target_modules=lora_target_regex(cfg.lora_targets),
                                     init_lora_weights=True), adapter_name=ADAPTER_NAME)
    names = []
    for name, param in model.named_parameters():
        train = cfg.mode == "full" or is_iitf(name) or (cfg.mode == "iitf_lora" and ".lora_" in name)
        param.requires_grad_(train)
        if train:
            names.append(name)
    if cfg.mode == "iitf_lora" and not any(".lora_" in n for n in names):
        raise ValueError(f"no LoRA layer matched trainable.lora_targets={list(cfg.lora_targets)}")
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("trainable: %s, %d tensors, %d parameters", cfg.mode, len(names), count)
    return names


def upcast_trainable(model: nn.Module) -> None:
    """Trainable parameters become float32 master weights (the model may be loaded in bf16)."""
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


@torch.no_grad()
def load_lora_into_trainable(model: nn.Module, path: str) -> int:
    """Start the adapter and IITF layers from a LoRA file (e.g. stage 1's export).

    The file's `X.lora_A.weight` goes to the adapter parameter `X.lora_A.default.weight` and
    `iitf.P` to `P`; every tensor must land on a trainable parameter of the same shape (same
    rank, same targets), so the next export stays relative to the same base model.
    """
    from echovideo_core.lora import read_lora

    tensors, _ = read_lora(path)
    params = dict(model.named_parameters())
    problems = []
    for key, value in tensors.items():
        if key.startswith(IITF_KEY_PREFIX):
            name = key[len(IITF_KEY_PREFIX):]
        else:
            name = key.replace(".lora_A.", f".lora_A.{ADAPTER_NAME}.").replace(".lora_B.", f".lora_B.{ADAPTER_NAME}.")
        param = params.get(name)
        if param is None or not param.requires_grad or param.shape != value.shape:
            problems.append(key)
            continue
        param.copy_(value.to(param.dtype))
    if problems:
        raise ValueError(f"{path}: {len(problems)} tensors do not fit the trainable parameters (other rank, "
                         f"targets or mode?), e.g. {problems[:3]}")
    logger.info("started the trainable weights from %s (%d tensors)", path, len(tensors))
    return len(tensors)


def lora_export_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The LoRA file's tensors (see lora.py) from a model state dict: A/B per adapted linear
    + `iitf.*` full tensors."""
    tensors: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        name = name.removeprefix("module.")
        if ".lora_A." in name or ".lora_B." in name:
            tensors[name.replace(f".{ADAPTER_NAME}.", ".")] = value.detach().float().cpu()
        elif is_iitf(name):
            tensors[IITF_KEY_PREFIX + name] = value.detach().float().cpu()
    return tensors


class EMA:
    """Exponential moving average of the trainable parameters, kept in float32.

    Saved and restored as plain tensors (`tensors` / `load_tensors`) so a checkpoint holds it
    as safetensors, never as a pickle.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, param in _trainable(model):
            self.shadow[name].lerp_(param.detach().float(), 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, param in _trainable(model):
            param.copy_(self.shadow[name].to(param.dtype))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {n: t.contiguous() for n, t in self.shadow.items()}

    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) - set(tensors))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} tensors, e.g. {missing[:3]}")
        self.shadow = {n: tensors[n].float().clone() for n in self.shadow}


def _trainable(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    return ((n, p) for n, p in model.named_parameters() if p.requires_grad)
