"""Training checkpoints (atomic, resumable) and the exported weights.

A checkpoint is `<output_dir>/checkpoint-<step>/`: accelerate's `save_state` (trainable
weights as safetensors, optimizer, LR scheduler, RNG state of every process), the EMA
tensors as safetensors, and `trainer_state.json`, written last. Everything is written into a
hidden `.tmp-checkpoint-<step>` folder that is renamed only when complete, so a run killed
while saving leaves the previous checkpoint as the latest one. A finished checkpoint is
never overwritten.

Exports (`export_weights`): the full transformer in the released layout
(`transformer/config.json` + `diffusion_pytorch_model*.safetensors` [+ index]) and/or a
LoRA file (`lora.safetensors`, see lora.py).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import save_file

from echovideo_core.atomic import write_json_atomic
from echovideo_core.errors import MissingInputError, OutputExistsError
from echovideo_core.loading.state_dict import open_tensors, read_state_dict
from echovideo_core.lora import save_lora

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_NAME = "trainer_state.json"
EMA_NAME = "ema.safetensors"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
SHARD_BYTES = 10 * 1024**3  # the release ships two shards of about 10 GB


@dataclass(frozen=True)
class ResumeState:
    """What a checkpoint tells the loop: the optimizer step it was taken after."""

    step: int
    path: Path


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Finished checkpoints (those with trainer_state.json), oldest first."""
    found = []
    for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*"):
        suffix = path.name[len(CHECKPOINT_PREFIX):]
        if path.is_dir() and suffix.isdigit() and (path / STATE_NAME).is_file():
            found.append((int(suffix), path))
    return sorted(found)


def resolve_resume(output_dir: str | Path, resume: str | None) -> Path | None:
    """`latest` -> the newest finished checkpoint (None when there is none); else a path."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            logger.info("--resume latest: no checkpoint in %s, starting from step 0", output_dir)
            return None
        return found[-1][1]
    path = Path(resume)
    if not (path / STATE_NAME).is_file():
        raise MissingInputError(f"--resume {path} is not a finished training checkpoint (no {STATE_NAME}); "
                                "give a checkpoint-N folder or 'latest'", path=path)
    return path


def save_checkpoint(accelerator: Any, output_dir: str | Path, step: int, *,
                    ema_tensors: Mapping[str, torch.Tensor] | None, keep_last: int) -> Path | None:
    """Collective: every process must call it. Returns the checkpoint folder on the main process."""
    output_dir = Path(output_dir)
    final = output_dir / f"{CHECKPOINT_PREFIX}{step:08d}"
    tmp = output_dir / f".tmp-{CHECKPOINT_PREFIX}{step:08d}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # left over by a run killed while saving
    accelerator.wait_for_everyone()
    if final.exists():
        logger.warning("%s exists already; not overwriting it", final)
        return None
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema_tensors is not None:
            save_file({k: v.cpu() for k, v in ema_tensors.items()}, str(tmp / EMA_NAME))
        write_json_atomic(tmp / STATE_NAME, {"step": step})
        os.replace(tmp, final)
        prune_checkpoints(output_dir, keep_last)
        logger.info("saved %s", final)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(output_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` finished checkpoints; returns what was deleted."""
    found = list_checkpoints(output_dir)
    doomed = [path for _, path in found[:-keep_last]] if keep_last > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def load_checkpoint(accelerator: Any, path: str | Path) -> tuple[ResumeState, dict[str, torch.Tensor] | None]:
    """Restore model, optimizer, scheduler and RNG state; returns the step and EMA tensors.

    Weights are loaded non-strictly because checkpoints hold only trainable tensors (a frozen
    11 GB DiT is not copied into every checkpoint); the trainer checks that every trainable
    tensor was present.
    """
    path = Path(path)
    accelerator.load_state(str(path), strict=False)
    state = json.loads((path / STATE_NAME).read_text())
    ema = read_state_dict(path / EMA_NAME)[0] if (path / EMA_NAME).is_file() else None
    logger.info("resumed from %s (step %d)", path, state["step"])
    return ResumeState(step=int(state["step"]), path=path), ema


def checkpoint_weight_keys(path: str | Path) -> set[str]:
    """Tensor names in a checkpoint's model file (to check that trainable ones are all there)."""
    keys: set[str] = set()
    for file in sorted(Path(path).glob("model*.safetensors")):
        with open_tensors(file) as f:
            keys.update(f.keys())
    return keys


def save_transformer_folder(state: Mapping[str, torch.Tensor], config: Mapping[str, Any], folder: str | Path,
                            *, max_shard_bytes: int = SHARD_BYTES) -> Path:
    """Write weights in the released `transformer/` layout, atomically (temp folder + rename)."""
    folder = Path(folder)
    if folder.exists():
        raise OutputExistsError(f"{folder} exists; exports never overwrite (choose another output_dir)", path=folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.contiguous()
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(tmp / WEIGHTS_NAME))
    else:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            name = f"diffusion_pytorch_model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(tmp / name))
            weight_map.update({k: name for k in shard})
        total = sum(t.numel() * t.element_size() for t in state.values())
        (tmp / INDEX_NAME).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1))
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    (tmp / "config.json").write_text(json.dumps({"_class_name": "EchoVideoTransformer3DModel", **clean}, indent=1))
    os.replace(tmp, folder)
    return folder


def export_lora(tensors: Mapping[str, torch.Tensor], path: str | Path, *, rank: int, alpha: float) -> Path:
    path = Path(path)
    if path.exists():
        raise OutputExistsError(f"{path} exists; exports never overwrite", path=path)
    return save_lora(tensors, path, rank=rank, alpha=alpha)
