"""The tiny model kit: deterministic, complete, loadable, and fast end to end."""
from __future__ import annotations

import time

import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.tiny import write_tiny_model
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


def weight_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


def test_same_seed_writes_identical_weights(tmp_path):
    assert weight_bytes(write_tiny_model(tmp_path / "again", seed=0)) == weight_bytes(tiny_model_dir())


def test_other_seed_writes_other_weights(tmp_path):
    other = weight_bytes(write_tiny_model(tmp_path / "other", seed=1))
    assert other.keys() == weight_bytes(tiny_model_dir()).keys()
    assert other["transformer/diffusion_pytorch_model.safetensors"] != \
        weight_bytes(tiny_model_dir())["transformer/diffusion_pytorch_model.safetensors"]


def test_writing_does_not_touch_the_global_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    write_tiny_model(tmp_path / "tiny")
    assert torch.equal(torch.rand(3), expected)


def test_tiny_generation_runs_in_seconds():
    pipe = EchoVideoPipeline.from_pretrained(tiny_model_dir())
    image, arcface = tiny_inputs()
    start = time.perf_counter()
    out = pipe(image, arcface, **TINY_CALL, generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 9, 64, 64, 3)
    assert time.perf_counter() - start < 30


def test_written_model_is_recognised_as_current(tmp_path):
    from echovideo_core.tiny import is_current_tiny_model

    assert is_current_tiny_model(tiny_model_dir())
    assert not is_current_tiny_model(tmp_path)
