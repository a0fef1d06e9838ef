"""Loading in a low-bit format never holds a full-precision copy of the model.

A fresh process loads a 240M-parameter DiT (12 blocks, 1024 wide: many layers, none large)
from a bf16 file and reports how far its resident memory rose above where it stood before
loading (Linux peak-RSS reset). A bf16 copy at any moment would put that rise at or above
the bf16 size; fp8 storage is half of it, Q4_K blocks about 30%, plus one layer in flight.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from echovideo_core.testing.full_size import RandomWeights, write_random_transformer
from echovideo_core.weights.memory import reset_peak_rss

MANY_LAYERS = dict(num_attention_heads=16, attention_head_dim=64, num_layers=12, in_channels=32, out_channels=16,
                   text_embed_dim=1024, time_embed_dim=512, face_embed_dim=32, face_seq_length=16, resampler_dim=32,
                   resampler_depth=1, resampler_heads=2, resampler_dim_head=16, resampler_num_queries=4,
                   resampler_ff_mult=2)
LOAD = """
import json, sys, torch
from echovideo_core.weights.memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from echovideo_core.weights.transformer import load_transformer_in_format
before = current_rss_bytes(); reset_peak_rss()
model = load_transformer_in_format(sys.argv[1], sys.argv[2] or None)
print(json.dumps({"rise": peak_rss_bytes() - before}))
"""

pytestmark = pytest.mark.skipif(not reset_peak_rss(), reason="needs Linux /proc/self/clear_refs to measure a phase's peak")


@pytest.fixture(scope="module")
def bf16_file(tmp_path_factory) -> Path:
    return write_random_transformer(tmp_path_factory.mktemp("memory") / "many_layers.safetensors", config=MANY_LAYERS)


def _bf16_bytes() -> int:
    return sum(2 * math.prod(shape) for shape in RandomWeights(MANY_LAYERS).shapes().values())


def _load_rise(path: Path, weights: str | None) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", LOAD, str(path), weights or ""], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["rise"]


def test_loading_fp8_from_a_bf16_file_stays_below_a_bf16_copy(bf16_file):
    assert _load_rise(bf16_file, "fp8") < 0.8 * _bf16_bytes()


def test_loading_a_q4_k_gguf_file_stays_well_below_a_bf16_copy(bf16_file, tmp_path):
    from echovideo_core.weights.convert import convert_transformer

    gguf = convert_transformer(bf16_file, "gguf-q4_k", tmp_path / "many_layers.gguf").out
    assert _load_rise(gguf, None) < 0.55 * _bf16_bytes()
