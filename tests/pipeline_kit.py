"""Helpers shared by the pipeline tests: the tiny model kit (written once per session),
the reference-case call arguments read from case_meta.json, and a stage-naming comparison."""
from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from echovideo_core.tiny import write_tiny_model


@functools.lru_cache(maxsize=1)
def tiny_model_dir() -> Path:
    """The tiny random-weight model, written once per test session."""
    return write_tiny_model(Path(tempfile.mkdtemp(prefix="echovideo-tiny-")) / "model", seed=0)


def tiny_inputs(size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (size, size, 3) uint8 identity image and a raw-ArcFace-like (512,) vector."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return image, (rng.standard_normal(512) * 20).astype(np.float32)


def write_identity_files(folder: Path, size: int = 128) -> tuple[Path, Path]:
    """`tiny_inputs(size)` as `echovideo face` writes them: identity.png and arcface.npy in `folder`."""
    import PIL.Image

    image, arcface = tiny_inputs(size)
    PIL.Image.fromarray(image).save(folder / "identity.png")
    np.save(folder / "arcface.npy", arcface)
    return folder / "identity.png", folder / "arcface.npy"


TINY_CALL = dict(prompt="a person smiles", height=64, width=64, num_frames=9, num_inference_steps=4)


def case_call(meta: dict) -> dict:
    """The reference case's pipeline arguments (sizes, steps, guidance) from case_meta.json."""
    call = meta["pipeline_case"]["call"]
    return dict(
        prompt=meta["pipeline_case"]["prompt"], negative_prompt=meta["pipeline_case"].get("negative_prompt"),
        height=call["height"], width=call["width"], num_frames=call["num_frames"],
        num_inference_steps=call["num_inference_steps"], guidance_scale=call["guidance_scale"],
        use_dynamic_cfg=call["use_dynamic_cfg"],
    )


def case_seed(meta: dict) -> int:
    """The run's seed: spec.pipe.seed, else the number in "torch.Generator('cpu').manual_seed(N)"."""
    seed = meta.get("spec", {}).get("pipe", {}).get("seed")
    if seed is None:
        seed = re.search(r"manual_seed\((\d+)\)", meta["pipeline_case"]["generator"]).group(1)
    return int(seed)


def assert_stage_close(stage: str, actual, expected, atol: float) -> None:
    """Fail with the stage's name and the max abs diff."""
    actual = torch.as_tensor(np.asarray(actual) if not isinstance(actual, torch.Tensor) else actual).float().cpu()
    expected = torch.as_tensor(np.asarray(expected) if not isinstance(expected, torch.Tensor) else expected).float().cpu()
    assert actual.shape == expected.shape, f"{stage}: shape {tuple(actual.shape)} != reference {tuple(expected.shape)}"
    diff = (actual - expected).abs().max().item()
    assert diff <= atol, f"{stage}: max abs diff {diff:.3g} > {atol:g}"
