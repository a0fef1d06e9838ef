"""Training configuration: frozen dataclasses with defaults in one place, loaded from YAML.

The YAML file mirrors the dataclasses section by section (`data`, `model`, `stage`,
`trainable`, `optimizer`, `schedule`, `ema`, `checkpoint`, `validation` plus top-level run
settings). Unknown keys are an error, never ignored: a typo such as `p_drop_face_latnt`
would otherwise silently train with the default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin, get_type_hints

import yaml

from echovideo_core.errors import InvalidInputError
from echovideo_core.numerics import numerics_for
from echovideo_core.paths import check_input_file

Trainable = Literal["iitf", "iitf_lora", "full"]
MixedPrecision = Literal["no", "bf16", "fp16"]

IITF_PREFIXES: tuple[str, ...] = ("face_proj.", "text_proj.", "face_info_proj.", "face_prj_wofc.")
"""Parameter-name prefixes of the IITF layers (the checkpoint's names)."""


class TrainConfigError(InvalidInputError):
    """The training YAML has an unknown key, a wrong type or an invalid value."""


@dataclass(frozen=True)
class DataConfig:
    root: str = "data/prepared"  # folder written by `echovideo prepare-data` (index.json + shards)
    batch_size: int = 1  # per process; global batch = batch_size * processes * accumulation
    num_workers: int = 0  # shards are small memory-mapped reads: workers rarely pay off
    shuffle: bool = True


@dataclass(frozen=True)
class ModelConfig:
    pretrained: str = "models/echovideo"  # released folder (transformer/ ...) or a transformer folder/file
    # Components for validation generations (vae/, text_encoder/, tokenizer/, scheduler/,
    # clip_visual_encoder/); defaults to `pretrained` when it is a whole pipeline folder.
    pipeline: str | None = None
    scheduler: str | None = None  # scheduler folder; default: <pipeline or pretrained>/scheduler
    # Storage dtype of the frozen weights (trainable ones are always float32 master weights).
    # bfloat16 halves the frozen DiT's memory; it needs mixed_precision bf16 (autocast).
    frozen_dtype: Literal["float32", "bfloat16"] = "bfloat16"
    # Start the trainable weights from a LoRA file (stage 2 after an iitf_lora stage 1:
    # <stage 1 output_dir>/final/lora.safetensors); same rank and targets as `trainable`.
    init_lora: str | None = None


@dataclass(frozen=True)
class StageConfig:
    # 1: every sample sees the face latent. 2: the face latent is replaced by zeros with
    # probability p_drop_face_latent, so identity must also flow through the IITF tokens.
    stage: int = 1
    # The paper publishes no value; 0.5 keeps both paths equally trained (our default).
    p_drop_face_latent: float = 0.5
    # CFG dropout: text -> T5 of "", face -> SigLIP of a black image + zero ArcFace (the
    # sampler's unconditional branch). 0.1 each, as common for CogVideoX fine-tunes.
    p_drop_text: float = 0.1
    p_drop_face: float = 0.1


@dataclass(frozen=True)
class TrainableConfig:
    mode: Trainable = "iitf"  # iitf | iitf_lora (IITF + LoRA on DiT attention) | full
    lora_rank: int = 64
    lora_alpha: float = 64.0
    # Names inside each DiT block's `attn1` that get a LoRA (the resampler's attention never does).
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    eps: float = 1e-8
    max_grad_norm: float = 1.0
    use_8bit: bool = True  # bitsandbytes AdamW8bit when importable, else torch AdamW (logged)


@dataclass(frozen=True)
class ScheduleConfig:
    name: str = "constant_with_warmup"  # any name diffusers.optimization.get_scheduler knows
    warmup_steps: int = 100


@dataclass(frozen=True)
class EMAConfig:
    enabled: bool = False
    decay: float = 0.999  # exported weights are the EMA ones when enabled


@dataclass(frozen=True)
class CheckpointConfig:
    every: int = 500  # optimizer steps between checkpoints
    keep_last: int = 3  # older checkpoint-* folders are deleted


@dataclass(frozen=True)
class ValidationConfig:
    every: int = 0  # optimizer steps between validation videos; 0 = never
    prompt: str | None = None  # default: the caption of the first training sample
    num_inference_steps: int = 50
    guidance_scale: float = 6.0
    seed: int = 42
    # The inference switches (numerics.py): the preset, and either switch overridden when set.
    mode: str = "as_released"
    feature_rounding: str | None = None
    cfg_schedule: str | None = None
    # Folder with the face models (antelopev2/, parsing_bisenet.pth, ...) for the face score;
    # without it the score is reported as unavailable, never guessed.
    face_models: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = "runs/echovideo"
    # The run's random stream (timesteps, noise, dropout, data order). Unset: the stage number
    # minus one (stage 1: 0, stage 2: 1), so a stage 2 does not replay stage 1's draws.
    seed: int | None = None
    max_steps: int = 2000  # optimizer steps
    gradient_accumulation_steps: int = 1
    mixed_precision: MixedPrecision = "bf16"
    gradient_checkpointing: bool = True
    log_every: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stage: StageConfig = field(default_factory=StageConfig)
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)

    def __post_init__(self) -> None:
        if self.seed is None and isinstance(self.stage.stage, int):
            object.__setattr__(self, "seed", self.stage.stage - 1)
        check_config(self)


def check_config(cfg: TrainConfig) -> None:
    """Raise TrainConfigError for values no run can use."""
    problems = []
    if cfg.stage.stage not in (1, 2):
        problems.append(f"stage.stage must be 1 or 2, got {cfg.stage.stage}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or cfg.seed < 0:
        problems.append(f"seed must be an integer >= 0, got {cfg.seed!r}")
    for name in ("p_drop_face_latent", "p_drop_text", "p_drop_face"):
        value = getattr(cfg.stage, name)
        if not 0.0 <= value <= 1.0:
            problems.append(f"stage.{name} must be in [0, 1], got {value}")
    if cfg.trainable.mode not in get_args(Trainable):
        problems.append(f"trainable.mode must be one of {get_args(Trainable)}, got {cfg.trainable.mode!r}")
    if cfg.mixed_precision not in get_args(MixedPrecision):
        problems.append(f"mixed_precision must be one of {get_args(MixedPrecision)}, got {cfg.mixed_precision!r}")
    for name, value in (("max_steps", cfg.max_steps), ("gradient_accumulation_steps", cfg.gradient_accumulation_steps),
                        ("data.batch_size", cfg.data.batch_size), ("trainable.lora_rank", cfg.trainable.lora_rank),
                        ("checkpoint.keep_last", cfg.checkpoint.keep_last)):
        if value < 1:
            problems.append(f"{name} must be >= 1, got {value}")
    if cfg.model.frozen_dtype not in ("float32", "bfloat16"):
        problems.append(f"model.frozen_dtype must be float32 or bfloat16, got {cfg.model.frozen_dtype!r}")
    elif cfg.model.frozen_dtype == "bfloat16" and cfg.mixed_precision != "bf16":
        problems.append("model.frozen_dtype bfloat16 needs mixed_precision bf16 (set frozen_dtype: float32 otherwise)")
    try:
        v = cfg.validation
        numerics_for(v.mode, feature_rounding=v.feature_rounding, cfg_schedule=v.cfg_schedule)
    except InvalidInputError as err:
        problems.append(f"validation.{err}")
    if problems:
        raise TrainConfigError("invalid training config: " + "; ".join(problems))


def _convert(value: Any, hint: Any, where: str) -> Any:
    """Turn a YAML value into the annotated type (nested dataclasses, tuples)."""
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise TrainConfigError(f"{where} must be a mapping, got {type(value).__name__}")
        return _build(hint, value, where)
    if get_origin(hint) is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainConfigError(f"unknown key(s) in {where or 'the top level'}: {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(known))})")
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


def config_from_dict(values: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from nested mappings (as read from YAML); unknown keys raise."""
    return _build(TrainConfig, values or {}, "")


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a train.yaml; `overrides` (same nesting) win over the file. Errors name the file
    (and the line, for invalid YAML)."""
    path = check_input_file(path, "--config")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(err, "problem", None) or err
        raise TrainConfigError(f"--config {path} is not valid YAML{line}: {problem}", path=path) from err
    if not isinstance(values, dict):
        raise TrainConfigError(f"--config {path}: the top level must be a mapping", path=path)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping):
            values[key] = {**values.get(key, {}), **value}
        else:
            values[key] = value
    try:
        return config_from_dict(values)
    except TrainConfigError as err:
        raise TrainConfigError(f"--config {path}: {err}", path=path) from None
    except (TypeError, ValueError) as err:  # a value of the wrong type (say a list where a number goes)
        raise TrainConfigError(f"--config {path}: a value has the wrong type ({err})", path=path) from None


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) for saving beside checkpoints."""
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))
