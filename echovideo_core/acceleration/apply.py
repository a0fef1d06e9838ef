"""All speed options on one transformer for one `with`: what the CLI, the bench and the nodes call.

    with accelerated(transformer, options, num_inference_steps=50) as speed:
        latents = denoise(transformer, scheduler, inputs, generator=g, model_call=speed.model_call)
    speed.block_evaluations  # blocks that ran, per sample

Everything is undone when the `with` ends (processors, compiled forwards, hooks), so a
transformer shared with other runs (a ComfyUI model) is left as it was. The order matters and
is fixed here: attention processors, compiled block forwards, context-parallel hooks, the
block counter, then the cache hooks outermost, so the counter sees only blocks that ran and
compile never traces a cache's Python decision.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from echovideo_core.acceleration.attention import attention_backend, check_attention_backend
from echovideo_core.acceleration.branches import branch_call
from echovideo_core.acceleration.cache import require_mag_ratios, step_cache
from echovideo_core.acceleration.compile import check_compile, compiled_blocks
from echovideo_core.acceleration.counting import BlockCount, count_block_evaluations
from echovideo_core.acceleration.options import SpeedOptionError, SpeedOptions
from echovideo_core.acceleration.parallel import (SINGLE_PROCESS, ParallelSetup, cfg_parallel_call,
                                                  disable_sequence_parallel, enable_sequence_parallel)
from echovideo_core.sampling import ModelCall


@dataclass(frozen=True)
class Acceleration:
    """model_call: pass to `denoise(..., model_call=...)`; count: the run's block evaluations."""

    model_call: ModelCall
    count: BlockCount

    @property
    def block_evaluations(self) -> int:
        return self.count.evaluations


def check_speed_options(options: SpeedOptions, device: torch.device | str,
                        parallel: ParallelSetup = SINGLE_PROCESS, mag_ratios: Sequence[float] | None = None) -> None:
    """Every check that can fail before a model loads, one clear line each."""
    check_attention_backend(options.attention, device)
    if options.compile:
        check_compile(device)
    require_mag_ratios(options.cache, mag_ratios)
    if options.parallel != parallel.mode:
        raise SpeedOptionError(f"--parallel {options.parallel} needs a process group set up for it "
                               f"(init_parallel / parallel_run), this process has {parallel.mode!r}")
    if options.parallel != "none" and options.guidance_branches == "sequential":
        raise SpeedOptionError(f"--guidance-branches sequential has no effect with --parallel {options.parallel} "
                               "(each rank runs one branch): leave it at batched")


def _model_call(options: SpeedOptions, parallel: ParallelSetup) -> ModelCall:
    cached = options.cache.enabled
    if parallel.cfg_degree > 1:
        return cfg_parallel_call(parallel, cached=cached)
    return branch_call(sequential=options.guidance_branches == "sequential", cached=cached)


@contextmanager
def accelerated(transformer: torch.nn.Module, options: SpeedOptions, *, num_inference_steps: int,
                mag_ratios: Sequence[float] | None = None,
                parallel: ParallelSetup = SINGLE_PROCESS) -> Iterator[Acceleration]:
    """Apply `options` to `transformer` for the `with`; yields the loop's model_call and the
    block counter. `mag_ratios` feeds --cache magcache (see cache.record_mag_ratios);
    `parallel` comes from parallel.parallel_run under torchrun."""
    check_speed_options(options, transformer.device, parallel, mag_ratios)
    sequence_parallel = parallel.ulysses_degree > 1
    with ExitStack() as stack:
        stack.enter_context(attention_backend(transformer, options.attention, dispatch=sequence_parallel))
        stack.enter_context(compiled_blocks(transformer, options.compile))
        if sequence_parallel:
            enable_sequence_parallel(transformer, parallel)
            stack.callback(disable_sequence_parallel, transformer)
        count = stack.enter_context(count_block_evaluations(transformer))
        stack.enter_context(step_cache(transformer, options.cache, num_inference_steps=num_inference_steps,
                                       mag_ratios=mag_ratios))
        yield Acceleration(model_call=_model_call(options, parallel), count=count)
