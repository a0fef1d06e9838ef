"""Shared by the speed-option tests: a 2-layer tiny DiT, seeded inputs, and one sampling run."""
from __future__ import annotations

from typing import Sequence

import torch

from echovideo_core.acceleration import SpeedOptions, accelerated
from echovideo_core.testing.synthetic import synthetic_inputs
from echovideo_core.sampling import SamplingInputs, denoise, make_scheduler
from echovideo_core.tiny import SCHEDULER_CONFIG, TINY_TRANSFORMER
from echovideo_core.transformer import EchoVideoTransformer3DModel

LAYERS = 3
STEPS = 6
SIZE = dict(height=32, width=48, num_frames=9)


def tiny_dit(layers: int = LAYERS) -> EchoVideoTransformer3DModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return EchoVideoTransformer3DModel(**{**TINY_TRANSFORMER, "num_layers": layers}).eval().requires_grad_(False)


def tiny_inputs(model: EchoVideoTransformer3DModel, steps: int = STEPS) -> SamplingInputs:
    return synthetic_inputs(model.config, steps=steps, **SIZE)


def sample(model: EchoVideoTransformer3DModel, inputs: SamplingInputs, options: SpeedOptions = SpeedOptions(),
           mag_ratios: Sequence[float] | None = None) -> tuple[torch.Tensor, int]:
    """Final latents and block evaluations of one run with `options`."""
    steps = len(inputs.plan.guidance)
    with accelerated(model, options, num_inference_steps=steps, mag_ratios=mag_ratios) as speed:
        latents = denoise(model, make_scheduler(SCHEDULER_CONFIG, steps), inputs,
                          generator=torch.Generator().manual_seed(1), model_call=speed.model_call)
    return latents, speed.block_evaluations
