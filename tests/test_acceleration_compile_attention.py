"""--compile and --attention on the tiny DiT: the same numbers as the plain run, and one clear
line for a backend this machine cannot run."""
from __future__ import annotations

import shutil

import pytest
import torch

from echovideo_core.acceleration import SpeedOptionError, SpeedOptions
from echovideo_core.acceleration.attention import attention_backend, check_attention_backend
from acceleration_fixtures import sample, tiny_dit, tiny_inputs

FLOAT32_ROUNDING = 1e-5


@pytest.fixture(scope="module")
def model():
    return tiny_dit(layers=2)


@pytest.fixture(scope="module")
def inputs(model):
    return tiny_inputs(model, steps=3)


@pytest.fixture(scope="module")
def baseline(model, inputs):
    return sample(model, inputs)


def test_dispatched_sdpa_attention_is_bit_identical_to_diffusers_processor(model, inputs, baseline):
    with attention_backend(model, "sdpa", dispatch=True):
        assert type(model.transformer_blocks[0].attn1.processor).__name__ == "DispatchingJointAttnProcessor"
        latents, _ = sample(model, inputs)
    assert torch.equal(latents, baseline[0])
    assert type(model.transformer_blocks[0].attn1.processor).__name__ == "CogVideoXAttnProcessor2_0"


@pytest.mark.parametrize("backend", ["sage", "flash"])
def test_a_backend_that_cannot_run_here_is_one_line_naming_the_fix(backend):
    with pytest.raises(SpeedOptionError, match=f"--attention {backend} .*use --attention sdpa") as err:
        check_attention_backend(backend, "cpu")
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not any(shutil.which(name) for name in ("c++", "g++", "clang++")),
                    reason="torch.compile's CPU backend (inductor) needs a C++ compiler")
def test_compiled_blocks_match_eager_to_float32_rounding(model, inputs, baseline):
    latents, evaluations = sample(model, inputs, SpeedOptions(compile=True))
    assert evaluations == baseline[1]
    assert (latents - baseline[0]).abs().max() <= FLOAT32_ROUNDING
    assert not model.transformer_blocks[0]._diffusers_hook.hooks  # compile came off with the run
