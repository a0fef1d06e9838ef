"""The denoising loop: CFG batched [uncond, cond], CogVideoXDPMScheduler, one hook per step.

Every random draw comes from the run's generator in the release's order: the caller draws
the initial noise and the face-latent sample first, then each scheduler step draws its
noise (steps with a second-order update draw twice and use the second draw; the last step
draws and discards). The fused conditioning is an input: it is computed once per run by the
caller, not at every step as the release does (the result is identical).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import torch
from diffusers import CogVideoXDPMScheduler

from echovideo_core.guidance import guided_output

OnStep = Callable[[int, int, torch.Tensor], None]
"""on_step(step, total, latents): called after each step with the step's (B, F', C, h, w)
float32 latents; the CLI drives tqdm with it, ComfyUI its progress bar (which may raise to
interrupt: exceptions propagate, nothing here catches them)."""


@dataclass(frozen=True)
class ModelInputs:
    """One step's transformer inputs, batched [uncond ; cond] with CFG.

    hidden: (nB, F', 2C, h, w) in the model dtype; timestep: (nB,) int64; conditioning:
    (nB, 226, D); rotary: the (cos, sin) tables or None; step / total: where the loop is;
    do_cfg: whether the batch holds two guidance branches (n = 2) or one (n = 1).
    """

    hidden: torch.Tensor
    timestep: torch.Tensor
    conditioning: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor] | None
    step: int
    total: int
    do_cfg: bool


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
class SamplingInputs:
    """Everything the loop consumes, laid out for the batched CFG call.

    noise: (B, F', C, h, w) float32 initial latents (already times init_noise_sigma).
    face_latent: (B, F', C, h, w) float32, the same for both CFG branches.
    conditioning: (2B, 226, D) fused tokens [uncond ; cond] with CFG, (B, 226, D) without.
    rotary: (cos, sin) tables for the video tokens, or None when the model has no RoPE.
    guidance: one scale per step (see guidance.guidance_scales); ignored without CFG.
    """

    noise: torch.Tensor
    face_latent: torch.Tensor
    conditioning: torch.Tensor
    rotary: tuple[torch.Tensor, torch.Tensor] | None
    guidance: Sequence[float]
    do_cfg: bool


def make_scheduler(config: dict, num_inference_steps: int) -> CogVideoXDPMScheduler:
    """A fresh scheduler for one run, so no step counter or state leaks between runs."""
    scheduler = CogVideoXDPMScheduler.from_config(config)
    scheduler.set_timesteps(num_inference_steps, device="cpu")
    return scheduler


def _model_input(latents: torch.Tensor, face_latent: torch.Tensor, do_cfg: bool) -> torch.Tensor:
    """[latents ; face latent] on channels, duplicated as [uncond ; cond] with CFG."""
    hidden = torch.cat([latents, face_latent], dim=2)
    return torch.cat([hidden, hidden]) if do_cfg else hidden


@torch.no_grad()
def denoise(
    model: DenoisingModel,
    scheduler: CogVideoXDPMScheduler,
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
    if len(inputs.guidance) != total:
        raise ValueError(f"need one guidance scale per step ({total}), got {len(inputs.guidance)}")
    device = model.device
    latents = inputs.noise.to(device, torch.float32)
    face_latent = inputs.face_latent.to(device, torch.float32)
    conditioning = inputs.conditioning.to(device, model.dtype)
    previous_x0: torch.Tensor | None = None
    for i, t in enumerate(timesteps):
        hidden = _model_input(latents, face_latent, inputs.do_cfg).to(device, model.dtype)
        t_batch = t.expand(hidden.shape[0]).to(device, torch.int64)
        velocity = model_call(model, ModelInputs(hidden, t_batch, conditioning, inputs.rotary, i, total, inputs.do_cfg))
        if inputs.do_cfg:
            uncond, cond = velocity.chunk(2)
            velocity = guided_output(uncond, cond, inputs.guidance[i])
        latents, previous_x0 = scheduler.step(
            velocity, previous_x0, t, timesteps[i - 1] if i > 0 else None, latents,
            eta=0.0, generator=generator, return_dict=False,
        )
        latents = latents.float()
        if on_step is not None:
            on_step(i, total, latents)
    return latents
