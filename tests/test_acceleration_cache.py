"""Step caches on the tiny DiT: threshold 0 is the uncached run, a threshold skips blocks,
the block count is exact, and the guidance-branch modes give the same numbers."""
from __future__ import annotations

import pytest
import torch

from echovideo_core.acceleration import SpeedOptions, parse_cache
from echovideo_core.acceleration.branches import branch_call
from echovideo_core.acceleration.cache import record_mag_ratios, step_cache
from echovideo_core.acceleration.teacache import rescaled_distance
from echovideo_core.sampling import denoise, make_scheduler
from echovideo_core.tiny import SCHEDULER_CONFIG
from acceleration_fixtures import LAYERS, STEPS, sample, tiny_dit, tiny_inputs

FLOAT32_ROUNDING = 1e-5  # batch-of-one vs batch-of-two kernels: measured ~3e-6 on these latents


@pytest.fixture(scope="module")
def model():
    return tiny_dit()


@pytest.fixture(scope="module")
def inputs(model):
    return tiny_inputs(model)


@pytest.fixture(scope="module")
def baseline(model, inputs):
    with record_mag_ratios(model) as ratios:
        latents, evaluations = sample(model, inputs)
    return latents, evaluations, tuple(ratios)


def test_an_uncached_cfg_run_evaluates_every_block_for_both_branches(baseline):
    assert baseline[1] == 2 * LAYERS * STEPS


@pytest.mark.parametrize("cache", ["fbc:0", "teacache:0", "magcache:0"])
def test_threshold_zero_gives_exactly_the_uncached_output(model, inputs, baseline, cache):
    latents, evaluations = sample(model, inputs, SpeedOptions(cache=parse_cache(cache)), mag_ratios=baseline[2])
    assert torch.equal(latents, baseline[0])
    assert evaluations == baseline[1]


@pytest.mark.parametrize("cache", ["fbc:0.5", "teacache:2", "magcache:1"])
def test_a_threshold_skips_blocks_and_reports_the_difference(model, inputs, baseline, cache):
    latents, evaluations = sample(model, inputs, SpeedOptions(cache=parse_cache(cache)), mag_ratios=baseline[2])
    assert evaluations < baseline[1]
    assert 0 < (latents - baseline[0]).abs().max() < 10


def test_magcache_without_calibrated_ratios_says_what_to_do(model, inputs):
    with pytest.raises(ValueError, match="needs magnitude ratios calibrated"):
        sample(model, inputs, SpeedOptions(cache=parse_cache("magcache")))


def test_mag_ratios_are_one_per_step_starting_at_one(baseline):
    assert len(baseline[2]) == STEPS and baseline[2][0] == 1.0 and all(r > 0 for r in baseline[2])


def test_sequential_guidance_branches_match_batched_to_float32_rounding(model, inputs, baseline):
    latents, evaluations = sample(model, inputs, SpeedOptions(guidance_branches="sequential"))
    assert evaluations == baseline[1]
    assert (latents - baseline[0]).abs().max() <= FLOAT32_ROUNDING


def _cache_branches(model, inputs, *, sequential: bool) -> set[str]:
    """The names FBC keeps a state for after one run."""
    with step_cache(model, parse_cache("fbc:0.5"), num_inference_steps=STEPS):
        denoise(model, make_scheduler(SCHEDULER_CONFIG, STEPS), inputs, generator=torch.Generator().manual_seed(1),
                model_call=branch_call(sequential=sequential, cached=True))
        leader = model.transformer_blocks[0]._diffusers_hook.hooks["fbc_leader_block_hook"]
        return set(leader.state_manager._state_cache)


def test_sequential_branches_keep_one_cache_per_branch(model, inputs):
    assert _cache_branches(model, inputs, sequential=True) == {"uncond", "cond"}


def test_batched_branches_share_one_cache_decided_per_step(model, inputs):
    assert _cache_branches(model, inputs, sequential=False) == {"batched"}


class _Cancelled(Exception):
    pass


def _cancel_at_step_2(step: int, total: int, latents) -> None:
    if step == 2:
        raise _Cancelled


def test_a_run_after_a_cancelled_one_starts_with_a_fresh_cache(model, inputs, baseline):
    """MagCache counts steps in its state: a cancelled run must not shift the next run's count."""
    spec = parse_cache("magcache:1")
    call = branch_call(sequential=False, cached=True)
    fresh = sample(model, inputs, SpeedOptions(cache=spec), mag_ratios=baseline[2])[0]
    with step_cache(model, spec, num_inference_steps=STEPS, mag_ratios=baseline[2]):
        with pytest.raises(_Cancelled):
            denoise(model, make_scheduler(SCHEDULER_CONFIG, STEPS), inputs, generator=torch.Generator().manual_seed(1),
                    model_call=call, on_step=_cancel_at_step_2)
        again = denoise(model, make_scheduler(SCHEDULER_CONFIG, STEPS), inputs,
                        generator=torch.Generator().manual_seed(1), model_call=call)
    assert torch.equal(again, fresh)


def test_teacache_rescaling_never_goes_below_zero():
    assert rescaled_distance(0.0) == 0.0  # the fitted polynomial is -0.052 at 0
    assert rescaled_distance(0.05) > 0


def test_teacache_rescaling_never_falls_as_the_input_change_grows():
    values = [rescaled_distance(x / 100) for x in range(101)]
    assert values == sorted(values)
    assert rescaled_distance(0.5) > 0.5  # the raw quartic is -20 there
