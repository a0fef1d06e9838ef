"""A bench result: the run and its baseline (same process), their ratios, the JSON and a table.

JSON keys (issue 12/13's interface): config, size, frames, steps, device, weights, offload,
speed, stages {text, face, fuse, denoise, decode} (seconds), step_seconds (list),
peak_memory_bytes (the generation's: resident weights + working memory), block_evaluations,
process_peak_memory_bytes (the whole process since it started, loading included: the figure
a task manager shows; with --no-baseline, the run's), baseline {the same}, speedup (the baseline's mean
step time / the run's), memory_ratio (peak / the baseline's peak),
max_abs_latent_diff_vs_baseline (None without a baseline); with --cache magcache also
mag_ratios (the baseline's calibration: a file for `echovideo generate --mag-ratios`).
"""
from __future__ import annotations

import statistics
from typing import Any

from echovideo_core.bench.run import STAGES, RunMeasurement


def steady_step_seconds(run: RunMeasurement) -> float:
    """Mean seconds per step after the first (which also pays noise, face latent, warm-up)."""
    steps = run.step_seconds[1:] or run.step_seconds
    return statistics.fmean(steps) if steps else 0.0


def report(description: dict[str, Any], run: RunMeasurement, baseline: RunMeasurement | None) -> dict[str, Any]:
    result = {**description, **run.as_json(), "baseline": None, "speedup": None, "memory_ratio": None,
              "max_abs_latent_diff_vs_baseline": None}
    if baseline is not None:
        result["baseline"] = baseline.as_json()
        run_step, base_step = steady_step_seconds(run), steady_step_seconds(baseline)
        result["speedup"] = base_step / run_step if run_step > 0 else None
        result["memory_ratio"] = run.peak_memory_bytes / baseline.peak_memory_bytes if baseline.peak_memory_bytes else None
        result["max_abs_latent_diff_vs_baseline"] = float((run.latents - baseline.latents).abs().max())
    return result


def table(result: dict[str, Any]) -> str:
    """The result as a plain-text table (seconds, GiB, ratios)."""
    def row(name: str, measured: dict[str, Any]) -> str:
        cells = [f"{measured['stages'][s]:8.2f}" for s in STAGES]
        step = statistics.fmean(measured["step_seconds"][1:] or measured["step_seconds"])
        return (f"{name:<9}" + "".join(cells) + f"{step:10.3f}{measured['peak_memory_bytes'] / 2**30:10.2f}"
                f"{measured['block_evaluations']:8d}")

    head = f"{'':<9}" + "".join(f"{s:>8}" for s in STAGES) + f"{'s/step':>10}{'peak GiB':>10}{'blocks':>8}"
    lines = [f"{result['config']} {result['size']} x {result['frames']} frames, {result['steps']} steps, "
             f"{result['device']}, weights {result['weights']}, offload {result['offload']}, {result['speed']}", head,
             row("run", result)]
    if result["baseline"] is not None:
        lines.append(row("baseline", result["baseline"]))
        lines.append(f"speedup {result['speedup']:.2f}x, memory {result['memory_ratio']:.3f}x, "
                     f"max latent difference {result['max_abs_latent_diff_vs_baseline']:.3g}")
    return "\n".join(lines)
