"""The denoising loop: CFG batched [uncond, cond], a CogVideoX scheduler, one hook per step.

Every random draw comes from the run's generator in the release's order: the caller draws
the initial noise and the face-latent sample first, then each DPM step draws its noise
(steps with a second-order update draw twice and use the second draw; the last step draws
and discards; DDIM draws nothing). The fused conditioning is an input: it is computed once
per run by the caller, not at every step as the release does (the result is identical).

Schedulers (`SamplingSettings.scheduler`), both from diffusers and both configured from the
model's scheduler settings: "dpm" (CogVideoXDPMScheduler, the release's 2nd-order sampler)
and "ddim" (CogVideoXDDIMScheduler, first order, no noise draws). Adding one = one entry in
`SCHEDULERS` and, if its `step` differs, one branch in `scheduler_step`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Protocol, Sequence

import torch
from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from echovideo_core.errors import InvalidInputError
from echovideo_core.guidance import guided_output
from echovideo_core.numerics import CfgSchedule, cfg_schedule_from
from echovideo_core.validation import SCHEDULER_NAMES, check_guidance, check_num_frames, check_size, check_steps

OnStep = Callable[[int, int, torch.Tensor], None]
"""on_step(step, total, latents): called after each step with the step's (B, F', C, h, w)
float32 latents; the CLI drives tqdm with it, ComfyUI its progress bar (which may raise to
interrupt: exceptions propagate, nothing here catches them)."""

SCHEDULERS: dict[str, type[SchedulerMixin]] = dict(zip(SCHEDULER_NAMES, (CogVideoXDPMScheduler, CogVideoXDDIMScheduler)))
SCHEDULER_ALIASES: dict[str, str] = {"CogVideoXDPM": "dpm", "CogVideoXDDIM": "ddim"}  # the sampler node's names


def scheduler_from(name: str) -> str:
    """A scheduler name ("dpm", "ddim"; the node's "CogVideoXDPM" / "CogVideoXDDIM" too)."""
    name = SCHEDULER_ALIASES.get(name, name)
    if name not in SCHEDULERS:
        raise InvalidInputError(f"scheduler must be one of {', '.join(SCHEDULERS)}; got {name!r}")
    return name


@dataclass(frozen=True)
class SamplingSettings:
    """One run's size and sampling choices (pixels; frames = 4k + 1; see validation.py)."""

    height: int = 480
    width: int = 848
    num_frames: int = 49
    num_inference_steps: int = 50
    guidance_scale: float = 6.0
    cfg_schedule: CfgSchedule = "timestep"
    scheduler: str = "dpm"
    allow_long_video: bool = False
    checked: bool = field(default=False, repr=False, compare=False)  # set by check(): its warnings are said once

    def check(self, temporal_compression: int = 4) -> "SamplingSettings":
        """Every limit of the model, each with its own message; returns the settings with
        older spellings of the switches mapped onto the vocabulary (checked settings pass
        through, so a warning about them is logged once per run)."""
        if self.checked:
            return self
        check_size(self.height, self.width)
        check_num_frames(self.num_frames, allow_long_video=self.allow_long_video,
                         temporal_compression=temporal_compression)
        check_steps(self.num_inference_steps)
        check_guidance(self.guidance_scale)
        return SamplingSettings(**{**self.__dict__, "cfg_schedule": cfg_schedule_from(self.cfg_schedule),
                                   "scheduler": scheduler_from(self.scheduler), "checked": True})


@dataclass(frozen=True)
class ModelInputs:
    """One step's transformer inputs, the guidance branches batched in GuidancePlan order
    ([uncond ; cond], or [uncond ; text_only ; cond] with identity guidance).

    hidden: (nB, F', 2C, h, w) in the model dtype; timestep: (nB,) int64; conditioning:
    (nB, 226, D); rotary: the (cos, sin) tables or None; step / total: where the loop is;
    branches: n, the number of guidance branches in the batch (1, 2 or 3).
    """

    hidden: torch.Tensor
    timestep: torch.Tensor
    conditioning: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor] | None
    step: int
    total: int
    branches: int


ModelCall = Callable[["DenoisingModel", ModelInputs], torch.Tensor]
"""model_call(model, inputs) -> (nB, F', C, h, w) float32 velocity in the batch's branch order.
The one place where the loop calls the transformer, so speed options (sequential guidance
branches, step-cache contexts, CFG-parallel ranks: echovideo_core.acceleration) plug in
without touching the loop."""


def batched_call(model: "DenoisingModel", inputs: ModelInputs) -> torch.Tensor:
    """The default: both guidance branches in one batched transformer call."""
    return model(inputs.hidden, timestep=inputs.timestep, conditioning=inputs.conditioning,
                 image_rotary_emb=inputs.rotary).sample.float()


class DenoisingModel(Protocol):
    """What the loop needs from the transformer (EchoVideoTransformer3DModel fits)."""

    dtype: torch.dtype
    device: torch.device

    def __call__(self, hidden_states: torch.Tensor, *, timestep: torch.Tensor,
                 conditioning: torch.Tensor, image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None
                 ) -> object: ...


@dataclass(frozen=True)
class GuidancePlan:
    """Which conditionings each step runs as one batch, and how their predictions combine.

    conditioning: (2B, 226, D) fused tokens [uncond ; cond] with CFG, (B, 226, D) without.
    guidance: one scale per step (see guidance.guidance_scales); ignored without CFG.
    text_only: (B, 226, D) tokens of the prompt with the "no face" features, needed by the
    identity controls (identity.py): outside `window` (timesteps [A, B]) it replaces the
    conditional tokens; with `identity_scale` it runs as a third branch,
    [uncond ; text_only ; cond] -> uncond + g (text_only - uncond) + g_id (cond - text_only).
    Without identity controls the plan is the release's two-branch CFG, unchanged.
    """

    conditioning: torch.Tensor
    guidance: Sequence[float]
    do_cfg: bool
    text_only: torch.Tensor | None = None
    window: tuple[int, int] | None = None
    identity_scale: float | None = None

    def _cond(self, conditioning: torch.Tensor) -> torch.Tensor:
        return conditioning[conditioning.shape[0] // 2 :] if self.do_cfg else conditioning

    def tokens(self, timestep: float) -> torch.Tensor:
        """The batch of conditionings for the step at `timestep`."""
        if self.text_only is None:
            return self.conditioning
        in_window = self.window is None or self.window[0] <= timestep <= self.window[1]
        cond = self._cond(self.conditioning) if in_window else self.text_only
        uncond = [self.conditioning[: self.conditioning.shape[0] // 2]] if self.do_cfg else []
        middle = [self.text_only] if self.identity_scale is not None else []
        return torch.cat([*uncond, *middle, cond])

    @property
    def branches(self) -> int:
        return (2 if self.do_cfg else 1) + (1 if self.identity_scale is not None and self.text_only is not None else 0)

    def combine(self, velocity: torch.Tensor, step: int) -> torch.Tensor:
        """One prediction from the batch's branches (float32)."""
        parts = velocity.chunk(self.branches)
        if self.identity_scale is None or self.text_only is None:
            return guided_output(parts[0], parts[1], self.guidance[step]) if self.do_cfg else parts[0]
        text_only, with_face = parts[-2], parts[-1]
        base = guided_output(parts[0], text_only, self.guidance[step]) if self.do_cfg else text_only
        return base + self.identity_scale * (with_face - text_only)


@dataclass(frozen=True)
class SamplingInputs:
    """Everything the loop consumes.

    noise: (B, F', C, h, w) float32 initial latents (already times init_noise_sigma).
    face_latent: (B, F', C, h, w) float32, the same for every guidance branch.
    plan: the branches per step and how they combine (GuidancePlan).
    rotary: (cos, sin) tables for the video tokens, or None when the model has no RoPE.
    """

    noise: torch.Tensor
    face_latent: torch.Tensor
    plan: GuidancePlan
    rotary: tuple[torch.Tensor, torch.Tensor] | None


def make_scheduler(config: Mapping, num_inference_steps: int, name: str = "dpm") -> SchedulerMixin:
    """A fresh scheduler of kind `name` for one run, so no step counter or state leaks between runs."""
    scheduler = SCHEDULERS[scheduler_from(name)].from_config(dict(config))
    scheduler.set_timesteps(num_inference_steps, device="cpu")
    return scheduler


def scheduler_step(scheduler: SchedulerMixin, velocity: torch.Tensor, previous_x0: torch.Tensor | None,
                   timesteps: torch.Tensor, i: int, latents: torch.Tensor, generator: torch.Generator | None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One update; returns (next latents, predicted original sample)."""
    if isinstance(scheduler, CogVideoXDPMScheduler):
        return scheduler.step(velocity, previous_x0, timesteps[i], timesteps[i - 1] if i > 0 else None, latents,
                              eta=0.0, generator=generator, return_dict=False)
    return scheduler.step(velocity, timesteps[i], latents, eta=0.0, generator=generator, return_dict=False)


def _model_input(latents: torch.Tensor, face_latent: torch.Tensor, branches: int) -> torch.Tensor:
    """[latents ; face latent] on channels, repeated once per guidance branch."""
    hidden = torch.cat([latents, face_latent], dim=2)
    return torch.cat([hidden] * branches) if branches > 1 else hidden


@torch.no_grad()
def denoise(
    model: DenoisingModel,
    scheduler: SchedulerMixin,
    inputs: SamplingInputs,
    *,
    generator: torch.Generator | None,
    on_step: OnStep | None = None,
    model_call: ModelCall = batched_call,
) -> torch.Tensor:
    """Run every scheduler timestep; returns the final (B, F', C, h, w) float32 latents.
    `model_call` runs the transformer for one step (default: batched guidance branches)."""
    timesteps = scheduler.timesteps
    total = len(timesteps)
    plan = inputs.plan
    device = model.device
    plan = replace(plan, conditioning=plan.conditioning.to(device, model.dtype),
                   text_only=None if plan.text_only is None else plan.text_only.to(device, model.dtype))
    if len(plan.guidance) != total:
        raise ValueError(f"need one guidance scale per step ({total}), got {len(plan.guidance)}")
    latents = inputs.noise.to(device, torch.float32)
    face_latent = inputs.face_latent.to(device, torch.float32)
    previous_x0: torch.Tensor | None = None
    for i, t in enumerate(timesteps):
        hidden = _model_input(latents, face_latent, plan.branches).to(device, model.dtype)
        t_batch = t.expand(hidden.shape[0]).to(device, torch.int64)
        conditioning = plan.tokens(float(t))
        velocity = model_call(model, ModelInputs(hidden, t_batch, conditioning, inputs.rotary, i, total, plan.branches))
        velocity = plan.combine(velocity, i)
        latents, previous_x0 = scheduler_step(scheduler, velocity, previous_x0, timesteps, i, latents, generator)
        latents = latents.float()
        if on_step is not None:
            on_step(i, total, latents)
    return latents
