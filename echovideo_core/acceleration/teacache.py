"""TeaCache for the CogVideoX-5B block stack, written from the published method.

Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model"
(CVPR 2025, arXiv 2411.19108). The method, as the paper states it:

- indicator: the relative L1 distance of the timestep-embedding-modulated input between
  consecutive steps, L1_rel(F, t) = ||F_t - F_{t+1}||_1 / ||F_{t+1}||_1;
- rescaling: a polynomial f fitted offline per model maps that input distance to the
  distance of the model's outputs;
- caching rule: the stack's residual (output - input) is reused at every step while the
  accumulated rescaled distance since the last computed step stays below the threshold
  delta, i.e. steps t_a..t_b-1 reuse the residual of t_a when
  sum_{t=t_a}^{t_b-1} f(L1_rel(F, t)) <= delta < sum_{t=t_a}^{t_b} f(L1_rel(F, t)).

For CogVideoX-5B the authors' indicator is the time embedding that modulates every block
(the `temb` each block receives, identical for both guidance branches: the decision is per
step, so the branches are cached consistently), and their published rescaling polynomial
for CogVideoX-5B is COGVIDEOX_5B_COEFFICIENTS (fitted constants from the TeaCache
repository's CogVideoX example, `coefficients_dict["CogVideoX-5b"]`; our blocks are
CogVideoX-5B's, so they apply as far as EchoVideo's fine-tuning left the embedding alone).
The first and last steps always compute, as in the authors' CogVideoX setting.

Two choices of ours. The rescaling is made monotone and non-negative: the running maximum
of f over [0, x], floored at 0. The fitted quartic is -0.05 at x = 0 and turns down beyond
x ~ 0.26, below 0 beyond 0.33 (outside the range it was fitted on); read literally it would
skip exactly the steps whose input changes most (and on random weights, whose time embedding
changes by ~0.9 a step, it skipped every middle step). With the floor, threshold 0 never skips
and gives the uncached output exactly. And the hooks use diffusers' hook registry and
per-context state (`cache_context`), so TeaCache composes with the block counter, compile
and the guidance-branch modes exactly like diffusers' own caches. Hand-written because
diffusers 0.42 ships no TeaCache.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook
from diffusers.hooks.hooks import BaseState, StateManager

from echovideo_core.acceleration.counting import transformer_blocks

TEACACHE_HOOK = "echovideo_teacache"
COGVIDEOX_5B_COEFFICIENTS: tuple[float, ...] = (-1.53880483e03, 8.43202495e02, -1.34363087e02, 7.97131516e00, -5.23162339e-02)
"""Highest power first: f(x) = c0 x^4 + c1 x^3 + c2 x^2 + c3 x + c4."""


def relative_l1(current: torch.Tensor, previous: torch.Tensor) -> float:
    """||current - previous||_1 / ||previous||_1 (as means, the same ratio)."""
    return float((current - previous).abs().mean() / previous.abs().mean())


def _polynomial(x: float, coefficients: Sequence[float]) -> float:
    value = 0.0
    for c in coefficients:  # Horner's rule
        value = value * x + c
    return value


@lru_cache(maxsize=8)
def _turning_points(coefficients: tuple[float, ...]) -> tuple[float, ...]:
    """Real x > 0 where f' = 0 (where a running maximum of f can sit)."""
    roots = np.roots(np.polyder(np.asarray(coefficients, dtype=np.float64)))
    return tuple(sorted(float(r.real) for r in roots if abs(r.imag) < 1e-12 and r.real > 0))


def rescaled_distance(distance: float, coefficients: Sequence[float] = COGVIDEOX_5B_COEFFICIENTS) -> float:
    """max(0, max of f over [0, distance]): the polynomial made monotone and non-negative."""
    coefficients = tuple(coefficients)
    candidates = [x for x in _turning_points(coefficients) if x < distance] + [distance]
    return max(0.0, *(_polynomial(x, coefficients) for x in candidates))


class TeaCacheState(BaseState):
    """Per guidance branch (per cache_context name)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.previous_embedding: torch.Tensor | None = None
        self.accumulated = 0.0
        self.should_compute = True
        self.stack_input: tuple[torch.Tensor, torch.Tensor] | None = None
        self.residuals: tuple[torch.Tensor, torch.Tensor] | None = None


class TeaCacheBlockHook(ModelHook):
    """On every block; the head decides for the step, the tail stores the stack's residual."""

    _is_stateful = True

    def __init__(self, state: StateManager, threshold: float, coefficients: Sequence[float], *,
                 head: bool, tail: bool) -> None:
        super().__init__()
        self.state_manager = state
        self.threshold = threshold
        self.coefficients = tuple(coefficients)
        self.head = head
        self.tail = tail

    def _decide(self, state: TeaCacheState, embedding: torch.Tensor) -> bool:
        context = self.state_manager.context
        step, total = context.step_index, context.num_inference_steps
        if step is None or total is None:
            raise ValueError("TeaCache needs cache_context(name, step_index=..., num_inference_steps=...)")
        first_or_last = step == 0 or step == total - 1
        if first_or_last or state.previous_embedding is None or state.residuals is None:
            compute = True
        else:
            state.accumulated += rescaled_distance(relative_l1(embedding, state.previous_embedding), self.coefficients)
            compute = state.accumulated >= self.threshold
        if compute:
            state.accumulated = 0.0
        state.previous_embedding = embedding
        return compute

    @torch.compiler.disable
    def new_forward(self, module: torch.nn.Module, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor,
                    temb: torch.Tensor, *args, **kwargs):
        state: TeaCacheState = self.state_manager.get_state()
        if self.head:
            state.should_compute = self._decide(state, temb)
            if state.should_compute:
                state.stack_input = (hidden_states, encoder_hidden_states)
            else:
                residual_hidden, residual_text = state.residuals
                return hidden_states + residual_hidden, encoder_hidden_states + residual_text
        elif not state.should_compute:
            return hidden_states, encoder_hidden_states
        hidden_out, text_out = self.fn_ref.original_forward(hidden_states, encoder_hidden_states, temb, *args, **kwargs)
        if self.tail:
            stack_hidden, stack_text = state.stack_input
            state.residuals = (hidden_out - stack_hidden, text_out - stack_text)
            state.stack_input = None
        return hidden_out, text_out

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.state_manager.reset()
        return module


def apply_teacache(transformer: torch.nn.Module, threshold: float,
                   coefficients: Sequence[float] = COGVIDEOX_5B_COEFFICIENTS) -> None:
    """Hook TeaCache onto every block (one shared per-branch state)."""
    state = StateManager(TeaCacheState, (), {})
    blocks = transformer_blocks(transformer)
    for index, block in enumerate(blocks):
        hook = TeaCacheBlockHook(state, threshold, coefficients, head=index == 0, tail=index == len(blocks) - 1)
        HookRegistry.check_if_exists_or_initialize(block).register_hook(hook, TEACACHE_HOOK)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def remove_teacache(transformer: torch.nn.Module) -> None:
    for block in transformer_blocks(transformer):
        HookRegistry.check_if_exists_or_initialize(block).remove_hook(TEACACHE_HOOK, recurse=False)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
