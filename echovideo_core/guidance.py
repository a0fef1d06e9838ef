"""Classifier-free guidance math: the per-step guidance scale and the guided output.

Pure functions only. The release's "dynamic CFG" plugs the *timestep value* (0..999)
into a formula written for the step index; the cfg_schedule "timestep" reproduces that
quirk bit for bit (Python float64 math, as the release computes it with `t.item()`),
"step_index" uses the step index the formula was meant for, "constant" no schedule.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from echovideo_core.numerics import CfgSchedule, cfg_schedule_from


def dynamic_cfg_scale(guidance_scale: float, position: float, num_inference_steps: int) -> float:
    """`1 + g * (1 - cos(pi * ((N - position) / N) ** 5)) / 2` in Python float64.

    `position` is what the caller plugs in: the timestep value (as released) or the step
    index. With the timestep value and t > N the base is a huge negative number and the
    scale behaves like a pseudo-random value in [1, 1 + g]; that is the release.
    """
    base = (num_inference_steps - position) / num_inference_steps
    return 1 + guidance_scale * ((1 - math.cos(math.pi * base**5.0)) / 2)


def guidance_scales(guidance_scale: float, timesteps: Sequence[int], cfg_schedule: CfgSchedule = "timestep") -> list[float]:
    """The guidance scale used at each step, in step order (see numerics.CFG_SCHEDULES)."""
    cfg_schedule = cfg_schedule_from(cfg_schedule)
    steps = len(timesteps)
    if cfg_schedule == "constant":
        return [float(guidance_scale)] * steps
    if cfg_schedule == "timestep":
        return [dynamic_cfg_scale(guidance_scale, int(t), steps) for t in timesteps]
    return [dynamic_cfg_scale(guidance_scale, i, steps) for i in range(steps)]


def uses_guidance(guidance_scale: float) -> bool:
    """Classifier-free guidance runs only above 1: at or below it the unconditional branch
    is skipped (the release's rule, applied by every front end through this function)."""
    return guidance_scale > 1.0


def guided_output(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classic CFG: `uncond + scale * (cond - uncond)`, in the inputs' dtype."""
    return uncond + scale * (cond - uncond)
