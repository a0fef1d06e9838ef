"""Shared pieces of the training tests: synthetic clips, a prepared tiny dataset, configs.

Everything is built here from the tiny model kit (`echovideo_core.tiny`) and the tiny face
models (`echovideo_core.testing.tiny_face_models`, whose detector fires on a saturated
magenta square: clips with the square "have a face", clips without it do not).
"""
from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch

from echovideo_core.testing.tiny_face_models import write_tiny_face_models
from echovideo_core.tiny import write_tiny_model

SIZE = 32  # training height = width (pixels)
FRAMES = 9  # 4k + 1 -> 3 latent frames (odd: the VAE decodes them back to 9 frames)
SOURCE = 96  # source clip size; the magenta "face" marker is found at this size


def write_clip(path: Path, *, seed: int, frames: int = 20, face: bool = True, size: int = SOURCE) -> Path:
    """A short H.264 clip: a drifting colour gradient, plus a magenta face marker if `face`."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            image = np.empty((size, size, 3), np.uint8)
            for c in range(3):
                image[..., c] = (base[c] + 50 * np.sin((xx + 3 * t * (c + 1)) / 9.0 + c)).clip(0, 255)
            if face:
                top = 36 + (t % 3)
                image[top:top + 12, 40:52] = (255, 0, 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


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


def write_manifest(folder: Path, clips: list[dict[str, Any]]) -> Path:
    path = folder / "captions.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clips))
    return path


def make_clips(folder: Path, count: int, *, without_face: tuple[int, ...] = ()) -> Path:
    """`count` clips in `folder` and their manifest; clips listed in `without_face` lack the marker."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        write_clip(folder / f"clip{i}.mp4", seed=i, face=i not in without_face)
        rows.append({"video": f"clip{i}.mp4", "caption": f"a person number {i} smiles and waves"})
    return write_manifest(folder, rows)


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
