"""The training loop on accelerate, in four visible parts: data, model + optimizer, prepare, loop.

One optimizer step = `gradient_accumulation_steps` micro-batches on every process; the
global batch is batch_size x processes x accumulation. Randomness (timesteps, noise,
dropout) is drawn per sample from (seed, step, dataset index) (objective.py) and the data
order per epoch from (seed, epoch), so a resumed run repeats an uninterrupted one step for
step and a 2-process run sees the same samples as a 1-process run with twice the batch.
Metrics go to `<output_dir>/metrics.jsonl`, one line per optimizer step.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from diffusers.optimization import get_scheduler
from tqdm import tqdm

from echovideo_core.atomic import write_text_atomic
from echovideo_core.distributed import exit_if_teardown_hangs
from echovideo_core.errors import MissingModelFilesError, OutputExistsError
from echovideo_core.loading import load_transformer
from echovideo_core.loading.scheduler import load_scheduler_config
from echovideo_core.paths import check_input_file, check_input_folder, check_output_folder
from echovideo_core.rotary import rotary_embeddings
from echovideo_core.training import checkpoint as ckpt
from echovideo_core.training.config import TrainConfig, config_to_dict
from echovideo_core.training.data import PreparedDataset, read_index
from echovideo_core.training.objective import (Conditions, add_noise, alphas_cumprod, draw_for_batch, drop_conditions,
                                               v_loss, v_target)
from echovideo_core.training.trainable import EMA, configure_trainable, load_lora_into_trainable, upcast_trainable

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class TrainResult:
    """losses: the global mean loss of each optimizer step run by this call (first_step + i)."""

    output_dir: Path
    first_step: int
    last_step: int
    losses: tuple[float, ...]
    exports: tuple[Path, ...]


class EpochSampler(torch.utils.data.Sampler[int]):
    """A permutation per epoch from (seed, epoch). Not a RandomSampler on purpose: accelerate
    leaves it alone, and its epoch is set only by `use_epoch` (accelerate's own set_epoch
    calls count iterations of each wrapper, which a resume would reset)."""

    def __init__(self, size: int, seed: int, shuffle: bool) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.size))
        gen = torch.Generator("cpu").manual_seed(self.seed * 7919 + self.epoch)
        return iter(torch.randperm(self.size, generator=gen).tolist())


# ---- 1. data ---------------------------------------------------------------------------

def build_data(cfg: TrainConfig, processes: int) -> tuple[PreparedDataset, torch.utils.data.DataLoader, EpochSampler]:
    dataset = PreparedDataset(cfg.data.root)
    needed = cfg.data.batch_size * processes * cfg.gradient_accumulation_steps
    if len(dataset) < needed:
        raise ValueError(f"{cfg.data.root} has {len(dataset)} samples; one optimizer step needs {needed} "
                         "(batch_size x processes x gradient_accumulation_steps)")
    sampler = EpochSampler(len(dataset), cfg.seed, cfg.data.shuffle)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.data.batch_size, sampler=sampler,
                                         drop_last=True, num_workers=cfg.data.num_workers)
    return dataset, loader, sampler


# ---- 2. model + optimizer --------------------------------------------------------------

def build_model(cfg: TrainConfig) -> tuple[torch.nn.Module, list[str]]:
    """Frozen weights load straight into `frozen_dtype` (one bf16 copy of the DiT in host
    memory, not a float32 one); trainable ones are then float32 master weights."""
    load_dtype = torch.float32 if cfg.trainable.mode == "full" else DTYPES[cfg.model.frozen_dtype]
    model = load_transformer(cfg.model.pretrained, torch_dtype=load_dtype)
    names = configure_trainable(model, cfg.trainable)
    upcast_trainable(model)
    if cfg.model.init_lora:
        load_lora_into_trainable(model, cfg.model.init_lora)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    return model, names


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module, processes: int) -> tuple[Any, Any]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = cfg.optimizer
    kwargs = dict(lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay, eps=opt.eps)
    optimizer = None
    if opt.use_8bit:
        try:
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(params, **kwargs)
            logger.info("optimizer: bitsandbytes AdamW8bit")
        except ImportError:
            logger.info("optimizer: torch AdamW (bitsandbytes is not installed, 8-bit Adam unavailable)")
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, **kwargs)
    # accelerate steps a prepared scheduler once per process per optimizer step: scale to match.
    schedule = get_scheduler(cfg.schedule.name, optimizer, num_warmup_steps=cfg.schedule.warmup_steps * processes,
                             num_training_steps=cfg.max_steps * processes)
    return optimizer, schedule


def scheduler_config(cfg: TrainConfig) -> dict[str, Any]:
    """The noise schedule: `model.scheduler`, else the scheduler/ of `model.pipeline` or of
    `model.pretrained` (or of the folder around a `transformer/` one, such as a stage-1
    export's `final/`), else the release's settings (logged)."""
    pretrained = Path(cfg.model.pretrained)
    around = pretrained.parent if pretrained.name == "transformer" else None
    return load_scheduler_config(cfg.model.scheduler, cfg.model.pipeline, pretrained, around)


def check_run_inputs(cfg: TrainConfig, resume: str | None) -> None:
    """Everything a run reads and writes, checked before anything loads: the output folder
    (writable; holding checkpoints only with --resume), the prepared data, the weights, the
    LoRA to start from, the face models for the score, and peft where a LoRA trains."""
    import importlib.util

    check_output_folder(cfg.output_dir, "output_dir")
    if not resume and ckpt.list_checkpoints(cfg.output_dir):
        raise OutputExistsError(f"output_dir {cfg.output_dir} already holds checkpoints: pass --resume latest to "
                                "continue that run, or choose another output_dir", path=cfg.output_dir)
    ckpt.resolve_resume(cfg.output_dir, resume)
    read_index(cfg.data.root)
    if not Path(cfg.model.pretrained).exists():
        raise MissingModelFilesError(f"model.pretrained {cfg.model.pretrained}: no such folder or file (the released "
                                     "folder, a transformer/ folder or a single file)", path=cfg.model.pretrained)
    if cfg.model.init_lora:
        check_input_file(cfg.model.init_lora, "model.init_lora")
    if cfg.validation.every and cfg.validation.face_models:
        check_input_folder(cfg.validation.face_models, "validation.face_models")
    if cfg.trainable.mode == "iitf_lora" and importlib.util.find_spec("peft") is None:
        raise MissingModelFilesError("trainable.mode iitf_lora trains a peft LoRA, but peft is not installed: "
                                     "pip install -r requirements.txt (or choose mode iitf / full)")


# ---- 4. the loop ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StepContext:
    """Everything a step needs that does not change between steps."""

    cfg: TrainConfig
    alphas: torch.Tensor
    uncond_text: torch.Tensor
    uncond_siglip: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor] | None


def micro_step(model: Any, batch: dict[str, torch.Tensor], ctx: StepContext, step: int,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of one micro-batch and its (B, 3) keep flags [face latent, text, face]."""
    stage = ctx.cfg.stage
    x0 = batch["latents"].to(device)
    draws = draw_for_batch(batch["index"], tuple(x0.shape[1:]), seed=ctx.cfg.seed, step=step,
                           p_drop_face_latent=stage.p_drop_face_latent if stage.stage == 2 else 0.0,
                           p_drop_text=stage.p_drop_text, p_drop_face=stage.p_drop_face)
    noise, timesteps = draws.noise.to(device), draws.timesteps.to(device)
    cond = drop_conditions(Conditions(text=batch["text"].to(device), siglip=batch["siglip"].to(device),
                                      arcface=batch["arcface"].to(device), face_latent=batch["face_latent"].to(device)),
                           draws, ctx.uncond_text.to(device), ctx.uncond_siglip.to(device))
    hidden = torch.cat([add_noise(x0, noise, timesteps, ctx.alphas), cond.face_latent], dim=2)
    prediction = model(hidden, timestep=timesteps, text_embeds=cond.text, siglip_embeds=cond.siglip,
                       arcface=cond.arcface, image_rotary_emb=ctx.rotary).sample
    keep = torch.stack([draws.keep_face_latent, draws.keep_text, draws.keep_face], dim=1)
    return v_loss(prediction, v_target(x0, noise, timesteps, ctx.alphas)), keep


def optimizer_step(accelerator: Accelerator, model: Any, optimizer: Any, schedule: Any,
                   group: list[dict[str, torch.Tensor]], ctx: StepContext, step: int) -> dict[str, Any]:
    """Accumulate over `group` (gradient sync only on the last micro-batch), then step."""
    losses, keeps = [], []
    for i, batch in enumerate(group):
        sync = i == len(group) - 1
        with nullcontext() if sync else accelerator.no_sync(model):
            loss, keep = micro_step(model, batch, ctx, step, accelerator.device)
            accelerator.backward(loss / len(group))
        losses.append(loss.detach().float())
        keeps.append(keep)
    if ctx.cfg.optimizer.max_grad_norm > 0:
        accelerator.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], ctx.cfg.optimizer.max_grad_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)
    loss = accelerator.reduce(torch.stack(losses).mean().to(accelerator.device), reduction="mean")
    kept = accelerator.reduce(torch.cat(keeps).long().sum(0).to(accelerator.device), reduction="sum")
    samples = len(group) * group[0]["index"].shape[0] * accelerator.num_processes
    return {"step": step + 1, "loss": float(loss), "lr": float(schedule.get_last_lr()[0]), "samples": samples,
            "face_latent_dropped": samples - int(kept[0]), "text_dropped": samples - int(kept[1]),
            "face_dropped": samples - int(kept[2])}


def _micro_batches(loader: Any, sampler: EpochSampler, accelerator: Accelerator, start: int,
                   steps_per_epoch: int, accumulation: int) -> Iterator[list[dict[str, torch.Tensor]]]:
    """Groups of `accumulation` micro-batches from optimizer step `start` on, epoch after epoch;
    a tail shorter than a group at an epoch's end is dropped."""
    epoch, offset = divmod(start, steps_per_epoch)
    while True:
        sampler.use_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, offset * accumulation) if offset else loader
        group: list[dict[str, torch.Tensor]] = []
        for batch in batches:
            group.append(batch)
            if len(group) == accumulation:
                yield group
                group = []
        epoch, offset = epoch + 1, 0


def _log_step(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _records(path: Path) -> list[dict[str, Any]]:
    """Parsed metrics lines; a torn last line (process killed mid-write) is ignored."""
    lines = [line for line in path.read_text().splitlines() if line] if path.is_file() else []
    records = []
    for number, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines) - 1:
                raise
    return records


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (left by a run that was killed after its last checkpoint)."""
    if path.is_file():
        kept = [r for r in _records(path) if r["step"] <= step]
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))


def read_metrics(output_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics records of a run, one per optimizer step, in step order."""
    return _records(Path(output_dir) / METRICS_NAME)


# ---- 3. prepare (and resume) --------------------------------------------------------------

def _keep_only(trainable: list[str]):
    """save_state hook: checkpoints hold only trainable tensors (not the frozen DiT)."""
    wanted = set(trainable)

    def hook(models: list, weights: list[dict[str, torch.Tensor]], output_dir: str) -> None:
        for i, state in enumerate(weights):
            weights[i] = {k: v for k, v in state.items() if k.removeprefix("module.") in wanted}

    return hook


def _resume(accelerator: Accelerator, cfg: TrainConfig, resume: str | None, trainable: list[str],
            ema: EMA | None) -> int:
    path = ckpt.resolve_resume(cfg.output_dir, resume)
    if path is None:
        return 0
    state, ema_tensors = ckpt.load_checkpoint(accelerator, path)
    saved = {k.removeprefix("module.") for k in ckpt.checkpoint_weight_keys(path)}
    # FSDP / DeepSpeed write their own sharded formats: only accelerate's safetensors are checked.
    missing = sorted(set(trainable) - saved) if saved else []
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} trainable tensors (e.g. {missing[:3]}): was it written "
                         "with another trainable.mode or LoRA setting?")
    if ema is not None:
        if ema_tensors is None:
            logger.warning("%s has no EMA state; the EMA restarts from the current weights", path)
        else:
            ema.load_tensors(ema_tensors)
    return state.step


def check_distributed(kind: str, cfg: TrainConfig) -> None:
    """Refuse combinations this trainer does not support under sharded training, clearly."""
    problems = []
    if kind in ("FSDP", "DEEPSPEED"):
        if cfg.validation.every:
            problems.append("validation videos need the whole model on one process: set validation.every: 0 "
                            "and generate from the exported weights")
        if cfg.ema.enabled:
            problems.append("EMA of sharded parameters is not supported: set ema.enabled: false")
    if kind == "DEEPSPEED" and cfg.gradient_accumulation_steps != 1:
        problems.append("set gradient_accumulation_steps in the DeepSpeed config and keep train.yaml's at 1 "
                        "(DeepSpeed steps inside backward)")
    if problems:
        raise ValueError(f"with {kind}: " + "; ".join(problems))


def step_context(cfg: TrainConfig, dataset: PreparedDataset, model: torch.nn.Module, device: torch.device) -> StepContext:
    settings = dataset.settings
    rotary = None
    if model.config.use_rotary_positional_embeddings:
        rotary = rotary_embeddings(model.config, height=int(settings["height"]), width=int(settings["width"]),
                                   num_frames=int(settings["num_frames"]), device=device)
    text, siglip = dataset.unconditional()
    return StepContext(cfg=cfg, alphas=alphas_cumprod(scheduler_config(cfg)), uncond_text=text,
                       uncond_siglip=siglip, rotary=rotary)


def train(cfg: TrainConfig, *, resume: str | None = None) -> TrainResult:
    """Run (or continue, with resume="latest" or a checkpoint path) a training run."""
    try:
        return _train(cfg, resume)
    finally:
        # accelerate keeps its settings (mixed precision, ...) in a process-wide singleton that
        # refuses different ones later; forget them so the next run in this process starts
        # clean. The process group (PartialState) is kept.
        AcceleratorState._reset_state(reset_partial_state=False)


def _train(cfg: TrainConfig, resume: str | None) -> TrainResult:
    check_run_inputs(cfg, resume)
    # A multi-process launch on a machine without CUDA trains on the CPU over gloo
    # (accelerate would otherwise start independent single-process runs).
    cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, project_dir=cfg.output_dir, cpu=cpu_processes)
    check_distributed(accelerator.distributed_type.name, cfg)
    output_dir = Path(cfg.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output_dir / "train_config.yaml", yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    # 1. data
    dataset, loader, sampler = build_data(cfg, accelerator.num_processes)
    # 2. model + optimizer (seeded: peft draws the LoRA A matrices from the global RNG)
    set_seed(cfg.seed)
    model, trainable = build_model(cfg)
    optimizer, schedule = build_optimizer(cfg, model, accelerator.num_processes)
    ema = EMA(model, cfg.ema.decay) if cfg.ema.enabled else None
    ctx = step_context(cfg, dataset, model, accelerator.device)
    # 3. prepare
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    accelerator.register_save_state_pre_hook(_keep_only(trainable))
    start = _resume(accelerator, cfg, resume, trainable, ema)
    if accelerator.is_main_process:
        _truncate_metrics(output_dir / METRICS_NAME, start)
    # 4. loop
    losses = _loop(accelerator, model, optimizer, schedule, loader, sampler, ctx, start, ema, dataset)
    if ema is not None:
        ema.copy_to(accelerator.unwrap_model(model))  # training is over: export the EMA weights
    state = accelerator.get_state_dict(model)  # collective under FSDP / ZeRO-3: all processes call it
    exports: tuple[Path, ...] = ()
    if accelerator.is_main_process:
        exports = export_final(state, dict(accelerator.unwrap_model(model).config), cfg, start + len(losses))
    accelerator.wait_for_everyone()  # every process has finished and every file is written
    with exit_if_teardown_hangs(accelerator.num_processes > 1):
        accelerator.end_training()
    return TrainResult(output_dir=output_dir, first_step=start, last_step=start + len(losses),
                       losses=tuple(losses), exports=exports)


def _loop(accelerator: Accelerator, model: Any, optimizer: Any, schedule: Any, loader: Any, sampler: EpochSampler,
          ctx: StepContext, start: int, ema: EMA | None, dataset: PreparedDataset) -> list[float]:
    cfg = ctx.cfg
    accumulation = cfg.gradient_accumulation_steps
    steps_per_epoch = len(loader) // accumulation
    if steps_per_epoch < 1:
        raise ValueError(f"an epoch has {len(loader)} micro-batches per process, fewer than "
                         f"gradient_accumulation_steps={accumulation}")
    metrics = Path(cfg.output_dir) / METRICS_NAME
    validator = None
    losses: list[float] = []
    step = start
    groups = _micro_batches(loader, sampler, accelerator, start, steps_per_epoch, accumulation)
    bar = tqdm(total=cfg.max_steps, initial=start, desc="training", unit="step",
               disable=not accelerator.is_main_process)  # one bar, with the time left, on the main process
    while step < cfg.max_steps:
        record = optimizer_step(accelerator, model, optimizer, schedule, next(groups), ctx, step)
        step += 1
        if ema is not None:
            ema.update(accelerator.unwrap_model(model))
        losses.append(record["loss"])
        bar.update(1)
        if accelerator.is_main_process:
            _log_step(metrics, record)
            if step % cfg.log_every == 0:
                bar.set_postfix(loss=f"{record['loss']:.5f}", lr=f"{record['lr']:.3g}", refresh=False)
                logger.debug("step %d/%d loss %.5f lr %.3g", step, cfg.max_steps, record["loss"], record["lr"])
        if step % cfg.checkpoint.every == 0 or step == cfg.max_steps:
            ckpt.save_checkpoint(accelerator, cfg.output_dir, step, keep_last=cfg.checkpoint.keep_last,
                                 ema_tensors=ema.tensors() if ema is not None else None)
        if cfg.validation.every and step % cfg.validation.every == 0:
            if accelerator.is_main_process:
                from echovideo_core.training.preview import Validator

                validator = validator or Validator(cfg, dataset)
                validator.run(accelerator.unwrap_model(model), step)
            accelerator.wait_for_everyone()
    bar.close()
    return losses


def export_final(state: dict[str, torch.Tensor], config: dict[str, Any], cfg: TrainConfig,
                 step: int) -> tuple[Path, ...]:
    """`final/transformer/` (modes full, iitf) and `final/lora.safetensors` (iitf, iitf_lora).

    `final/export.json` records the step. An export of another step (a finished run extended
    with a larger max_steps) is kept as `final-<step>/`, never overwritten.
    """
    from echovideo_core.training.trainable import lora_export_tensors

    final = Path(cfg.output_dir) / "final"
    marker = final / "export.json"
    if final.exists():
        previous = json.loads(marker.read_text())["step"] if marker.is_file() else -1
        if previous == step:
            logger.info("%s holds the export of step %d already", final, step)
            return ()
        final.rename(final.with_name(f"final-{previous:08d}"))
    tmp = final.with_name(".final.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    exports = []
    mode = cfg.trainable.mode
    if mode in ("full", "iitf"):
        dtype = DTYPES[cfg.model.frozen_dtype]
        weights = {k.removeprefix("module."): v.detach().cpu().to(dtype) if v.is_floating_point() else v.cpu()
                   for k, v in state.items()}
        ckpt.save_transformer_folder(weights, config, tmp / "transformer")
        exports.append(final / "transformer")
    if mode in ("iitf", "iitf_lora"):
        ckpt.export_lora(lora_export_tensors(state), tmp / "lora.safetensors",
                         rank=cfg.trainable.lora_rank, alpha=cfg.trainable.lora_alpha)
        exports.append(final / "lora.safetensors")
    scheduler = {"_class_name": "CogVideoXDPMScheduler", **scheduler_config(cfg)}  # stage 2 finds it beside transformer/
    (tmp / "scheduler").mkdir()
    (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler, indent=1))
    (tmp / "export.json").write_text(json.dumps({"step": step, "mode": mode}))
    os.replace(tmp, final)  # the export appears whole or not at all
    logger.info("exported %s", ", ".join(str(p) for p in exports))
    return tuple(exports)
