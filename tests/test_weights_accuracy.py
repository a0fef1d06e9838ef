"""Approximate weights stay within documented bounds of the same bf16 weights (docs/weights.md).

Same seeded random weights, inputs and noise; float32 compute for reference and candidate,
so the difference is the format's. Bounds are about twice the largest value measured over
seeds 0-3 (tiny) and 0-1 (medium); the runs here use seed 0.
"""
from __future__ import annotations

import math

import pytest
import torch

from echovideo_core.testing.full_size import MEDIUM_TRANSFORMER, RandomWeights
from echovideo_core.tiny import TINY_TRANSFORMER
from echovideo_core.weights.accuracy import format_errors, psnr_db
from echovideo_core.weights.sources import StateDictSource

FORMATS = ["fp8", "int8", "gguf-q8_0", "gguf-q5_k", "gguf-q4_k"]
# (max |latent difference|, minimum PSNR dB). Tiny: 32x32, 5 frames, 2 steps with CFG.
# Its rows are 16-32 wide, so Q5_K/Q4_K fall back to Q8_0 there: their bound is Q8_0's.
TINY_BOUNDS = {"fp8": (0.1, 45), "int8": (0.04, 55), "gguf-q8_0": (0.03, 55), "gguf-q5_k": (0.03, 55),
               "gguf-q4_k": (0.03, 55)}
# Medium with one block (the release's 3072-wide block geometry): 16x16, 1 frame, 1 step, no CFG.
MEDIUM_BOUNDS = {"fp8": (0.04, 50), "int8": (0.015, 60), "gguf-q8_0": (0.01, 62), "gguf-q5_k": (0.06, 48),
                 "gguf-q4_k": (0.12, 42)}


def _errors(config: dict, **run) -> dict:
    torch.manual_seed(0)
    random = RandomWeights(config, seed=0)
    source = StateDictSource({k: random.read(k).data for k in random.shapes()}, random.config)
    return {error.weights: error for error in format_errors(source, FORMATS, seed=0, **run)}


@pytest.fixture(scope="module")
def tiny_errors():
    return _errors(TINY_TRANSFORMER, height=32, width=32, num_frames=5, steps=2)


@pytest.fixture(scope="module")
def medium_errors():
    return _errors({**MEDIUM_TRANSFORMER, "num_layers": 1}, height=16, width=16, num_frames=1, steps=1, cfg=False)


@pytest.mark.parametrize("weights", FORMATS)
def test_tiny_latents_stay_within_the_bound(tiny_errors, weights):
    largest, min_psnr = TINY_BOUNDS[weights]
    error = tiny_errors[weights]
    assert 0 < error.max_abs_latent_diff < largest and error.psnr_db > min_psnr, error


@pytest.mark.parametrize("weights", FORMATS)
def test_medium_latents_stay_within_the_bound(medium_errors, weights):
    largest, min_psnr = MEDIUM_BOUNDS[weights]
    error = medium_errors[weights]
    assert 0 < error.max_abs_latent_diff < largest and error.psnr_db > min_psnr, error


def test_fewer_bits_cost_accuracy_at_the_release_width(medium_errors):
    assert medium_errors["gguf-q8_0"].psnr_db > medium_errors["gguf-q5_k"].psnr_db > medium_errors["gguf-q4_k"].psnr_db


def test_psnr_of_identical_tensors_is_infinite_and_follows_the_peak():
    reference = torch.tensor([0.0, 1.0, 0.5, 0.25])
    assert psnr_db(reference, reference) == math.inf
    assert psnr_db(reference, reference + 0.1, peak=1.0) == pytest.approx(20.0)
