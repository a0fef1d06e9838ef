"""Measure speed options against a baseline in the same process: what `echovideo bench` reports.

For each option: seconds per step (steady state: steps after the first), the first step's time
(the warm-up: compilation with --compile), the speedup against the baseline's steady time, the
latent difference the option causes (max and mean |difference| of the final latents against
the baseline's, same seed), and the block evaluations of the run and of the baseline. The
baseline (`SpeedOptions()`) runs first and also measures MagCache's magnitude ratios, so a
`magcache:T` option runs on ratios calibrated on this very model, size and step count.

`medium_transformer` is the CPU "medium" configuration: real block width (48 heads x 64,
time embedding 512) with few layers, random weights (timing and block counts need no
checkpoint; cache skip rates on random weights say nothing about the real model's).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch

from echovideo_core.acceleration.apply import accelerated
from echovideo_core.acceleration.cache import record_mag_ratios
from echovideo_core.acceleration.options import SpeedOptions
from echovideo_core.sampling import SamplingInputs, denoise, make_scheduler
from echovideo_core.testing.full_size import MEDIUM_TRANSFORMER
from echovideo_core.transformer import EchoVideoTransformer3DModel

MEDIUM_SIZE: dict[str, int] = dict(height=64, width=96, num_frames=9, steps=10)


@dataclass(frozen=True)
class OptionMeasurement:
    """One option's run against the baseline's (same process, inputs and seed)."""

    option: str
    seconds_per_step: float
    warmup_seconds: float
    total_seconds: float
    speedup: float
    max_latent_difference: float
    mean_latent_difference: float
    block_evaluations: int
    baseline_block_evaluations: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Run:
    latents: torch.Tensor
    step_seconds: tuple[float, ...]
    block_evaluations: int

    @property
    def steady(self) -> float:
        rest = self.step_seconds[1:] or self.step_seconds
        return statistics.fmean(rest)


def medium_transformer(seed: int = 0, **overrides: Any) -> EchoVideoTransformer3DModel:
    """The medium configuration with seeded random weights, float32, eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return EchoVideoTransformer3DModel(**{**MEDIUM_TRANSFORMER, **overrides}).eval().requires_grad_(False)


def _run(transformer: torch.nn.Module, scheduler_config: dict, inputs: SamplingInputs, options: SpeedOptions,
         seed: int, mag_ratios: Sequence[float] | None) -> _Run:
    steps = len(inputs.plan.guidance)
    scheduler = make_scheduler(scheduler_config, steps)
    cuda = transformer.device.type == "cuda"
    stamps: list[float] = []

    def on_step(step: int, total: int, latents: torch.Tensor) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with accelerated(transformer, options, num_inference_steps=steps, mag_ratios=mag_ratios) as speed:
        start = time.perf_counter()
        latents = denoise(transformer, scheduler, inputs, generator=torch.Generator("cpu").manual_seed(seed),
                          on_step=on_step, model_call=speed.model_call)
    edges = [start, *stamps]
    return _Run(latents.cpu(), tuple(b - a for a, b in zip(edges, edges[1:])), speed.block_evaluations)


def bench_speed_options(transformer: torch.nn.Module, scheduler_config: dict, inputs: SamplingInputs,
                        options: Sequence[SpeedOptions], *, seed: int = 0) -> list[OptionMeasurement]:
    """The baseline first (returned first, option "baseline"), then each option in order."""
    with record_mag_ratios(transformer) as ratios:
        baseline = _run(transformer, scheduler_config, inputs, SpeedOptions(), seed, None)
    results = [_measure("baseline", baseline, baseline)]
    for option in options:
        run = _run(transformer, scheduler_config, inputs, option, seed, tuple(ratios))
        results.append(_measure(option.label(), run, baseline))
    return results


def _measure(label: str, run: _Run, baseline: _Run) -> OptionMeasurement:
    difference = (run.latents - baseline.latents).abs()
    return OptionMeasurement(
        option=label, seconds_per_step=run.steady, warmup_seconds=run.step_seconds[0],
        total_seconds=sum(run.step_seconds), speedup=baseline.steady / run.steady,
        max_latent_difference=float(difference.max()), mean_latent_difference=float(difference.mean()),
        block_evaluations=run.block_evaluations, baseline_block_evaluations=baseline.block_evaluations)

