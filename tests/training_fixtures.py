"""Shared pieces of the training tests: synthetic clips, a prepared tiny dataset, configs.

Everything is built here from the tiny model kit (`echovideo_core.tiny`) and the tiny face
models (`echovideo_core.testing.tiny_face_models`, whose detector fires on a saturated
magenta square: clips with the square "have a face", clips without it do not).
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch

from echovideo_core.testing.synthetic_clips import write_clip, write_manifest, write_synthetic_clips  # noqa: F401
from echovideo_core.testing.tiny_face_models import write_tiny_face_models
from echovideo_core.tiny import write_tiny_model

SIZE = 32  # training height = width (pixels)
FRAMES = 9  # 4k + 1 -> 3 latent frames (odd: the VAE decodes them back to 9 frames)


def _session_dir(prefix: str) -> Path:
    """A temporary folder removed when the test session's process exits."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.lru_cache(maxsize=1)
def tiny_kit() -> tuple[Path, Path]:
    """(model folder, face-model folder), written once per test session."""
    root = _session_dir("echovideo-train-kit-")
    return write_tiny_model(root / "model", seed=0), write_tiny_face_models(root / "face_models")


def make_clips(folder: Path, count: int, *, without_face: tuple[int, ...] = ()) -> Path:
    """`count` clips in `folder` and their manifest; clips listed in `without_face` lack the marker."""
    return write_synthetic_clips(folder, count, without_face=without_face)


@functools.lru_cache(maxsize=1)
def prepared_dataset() -> Path:
    """A prepared folder with 8 samples (4 clips x 2 windows), written once per session."""
    from echovideo_core.training.prepare import PrepareSettings, load_encoders, prepare_dataset, read_manifest

    model, faces = tiny_kit()
    root = _session_dir("echovideo-train-data-")
    manifest = make_clips(root / "videos", 4)
    settings = PrepareSettings(height=SIZE, width=SIZE, num_frames=FRAMES, frame_stride=1, windows_per_clip=2)
    prepare_dataset(read_manifest(manifest), root / "prepared", load_encoders(model, faces), settings)
    return root / "prepared"


def train_config(output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A tiny, fast float32 config as nested dicts (YAML-shaped); `overrides` by section."""
    model, _ = tiny_kit()
    cfg: dict[str, Any] = {
        "output_dir": str(output_dir), "seed": 3, "max_steps": 20, "gradient_accumulation_steps": 1,
        "mixed_precision": "no", "gradient_checkpointing": False, "log_every": 50,
        "data": {"root": str(prepared_dataset()), "batch_size": 2},
        "model": {"pretrained": str(model), "frozen_dtype": "float32"},
        "stage": {"stage": 1, "p_drop_text": 0.0, "p_drop_face": 0.0},
        "trainable": {"mode": "iitf", "lora_rank": 4, "lora_alpha": 4},
        "optimizer": {"lr": 1e-3, "use_8bit": False},
        "schedule": {"name": "constant", "warmup_steps": 0},
        "checkpoint": {"every": 5, "keep_last": 2},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            cfg[key] = {**cfg.get(key, {}), **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models are dominated by threading overhead on a shared 2-core machine.
    Autouse in every test module that imports it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_training(tmp: Path, **overrides: Any):
    """Train with the tiny config in `tmp/run` (overrides as in train_config): (config, result)."""
    from echovideo_core.training.config import config_from_dict
    from echovideo_core.training.trainer import train

    cfg = config_from_dict(train_config(tmp / "run", **overrides))
    return cfg, train(cfg)
