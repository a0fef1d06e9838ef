"""Classifier-free guidance math: the per-step guidance scale and the guided output.

Pure functions only. The release's "dynamic CFG" plugs the *timestep value* (0..999)
into a formula written for the step index; `as_released` reproduces that quirk bit for bit
(Python float64 math, as the release computes it with `t.item()`), `corrected` uses the
step index the formula was meant for.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch

NumericMode = Literal["as_released", "corrected"]
NUMERIC_MODES: tuple[str, ...] = ("as_released", "corrected")


def dynamic_cfg_scale(guidance_scale: float, position: float, num_inference_steps: int) -> float:
    """`1 + g * (1 - cos(pi * ((N - position) / N) ** 5)) / 2` in Python float64.

    `position` is what the caller plugs in: the timestep value (as released) or the step
    index (corrected). With the timestep value and t > N the base is a huge negative number
    and the scale behaves like a pseudo-random value in [1, 1 + g]; that is the release.
    """
    base = (num_inference_steps - position) / num_inference_steps
    return 1 + guidance_scale * ((1 - math.cos(math.pi * base**5.0)) / 2)


def guidance_scales(
    guidance_scale: float,
    timesteps: Sequence[int],
    *,
    use_dynamic_cfg: bool,
    mode: NumericMode = "as_released",
) -> list[float]:
    """The guidance scale used at each step, in step order.

    as_released: the dynamic form evaluated at the integer timestep value;
    corrected: the dynamic form evaluated at the step index 0..N-1.
    Without dynamic CFG every step uses `guidance_scale` unchanged.
    """
    if mode not in NUMERIC_MODES:
        raise ValueError(f"mode must be one of {NUMERIC_MODES}, got {mode!r}")
    steps = len(timesteps)
    if not use_dynamic_cfg:
        return [float(guidance_scale)] * steps
    if mode == "as_released":
        return [dynamic_cfg_scale(guidance_scale, int(t), steps) for t in timesteps]
    return [dynamic_cfg_scale(guidance_scale, i, steps) for i in range(steps)]


def guided_output(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classic CFG: `uncond + scale * (cond - uncond)`, in the inputs' dtype."""
    return uncond + scale * (cond - uncond)
