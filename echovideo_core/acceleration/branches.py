"""How one denoising step calls the transformer: guidance branches batched or one after the
other, each call inside the cache context its step cache keys its state on.

These are `sampling.ModelCall`s (the loop's one hook). Batched (the default) runs
[uncond ; cond] as one batch; sequential runs the unconditional then the conditional branch
as two batch-of-one calls, which holds half the activations at a time. Both compute the same
per-sample math; the only difference is the batch size the matrix kernels see, so the
latents agree to float32 rounding (measured in tests, not assumed bit-identical).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import ContextManager

import torch

from echovideo_core.sampling import DenoisingModel, ModelCall, ModelInputs, batched_call

BRANCH_NAMES: dict[int, tuple[str, ...]] = {1: ("cond",), 2: ("uncond", "cond"), 3: ("uncond", "text_only", "cond")}
"""Order of the guidance branches in a batch of n (sampling.GuidancePlan), and their
cache-context names (each branch keeps its own step-cache state when run alone)."""


def branch_inputs(inputs: ModelInputs, index: int, count: int = 2) -> ModelInputs:
    """The `index`-th of `count` equal batch slices of a step's inputs."""
    size = inputs.hidden.shape[0] // count
    part = slice(index * size, (index + 1) * size)
    return replace(inputs, hidden=inputs.hidden[part], timestep=inputs.timestep[part],
                   conditioning=inputs.conditioning[part])


def _context(model: DenoisingModel, name: str, inputs: ModelInputs, cached: bool) -> ContextManager:
    if not cached:
        return nullcontext()
    return model.cache_context(name, step_index=inputs.step, num_inference_steps=inputs.total)  # type: ignore[attr-defined]


def _start_of_run(model: DenoisingModel, inputs: ModelInputs, cached: bool) -> None:
    if cached and inputs.step == 0:
        from echovideo_core.acceleration.cache import reset_step_cache

        reset_step_cache(model)  # type: ignore[arg-type]


def branch_call(*, sequential: bool, cached: bool) -> ModelCall:
    """The ModelCall for batched or sequential guidance branches, with cache contexts when a
    step cache is on (batched: one context "batched"; sequential: one per branch)."""

    def call(model: DenoisingModel, inputs: ModelInputs) -> torch.Tensor:
        _start_of_run(model, inputs, cached)
        if inputs.branches == 1:
            with _context(model, "cond", inputs, cached):
                return batched_call(model, inputs)
        if not sequential:
            with _context(model, "batched", inputs, cached):
                return batched_call(model, inputs)
        velocities = []
        for index, name in enumerate(BRANCH_NAMES[inputs.branches]):
            with _context(model, name, inputs, cached):
                velocities.append(batched_call(model, branch_inputs(inputs, index, inputs.branches)))
        return torch.cat(velocities)

    return call


def one_branch_call(index: int, *, cached: bool) -> ModelCall:
    """Run only guidance branch `index` of the batch (a CFG-parallel rank's share); returns its
    velocity alone. Without CFG the whole batch is that branch."""

    def call(model: DenoisingModel, inputs: ModelInputs) -> torch.Tensor:
        _start_of_run(model, inputs, cached)
        if inputs.branches == 1:
            with _context(model, "cond", inputs, cached):
                return batched_call(model, inputs)
        own = branch_inputs(inputs, index, inputs.branches)
        with _context(model, BRANCH_NAMES[inputs.branches][index], inputs, cached):
            return batched_call(model, own)

    return call
