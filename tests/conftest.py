"""Shared fixtures: the reference cases in tests/data (copied from the release's numbers).

Every `tests/data/case_*` folder that holds a reference case is picked up, so another
case (another size, layer count, aspect ratio) dropped in beside case A runs the same tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"
CASES = sorted(p for p in DATA.glob("case_*") if (p / "case_meta.json").exists())

torch.set_num_threads(min(2, torch.get_num_threads()))


def case_ids() -> list[str]:
    return [p.name for p in CASES]


@pytest.fixture(scope="session", params=CASES, ids=case_ids())
def case_dir(request) -> Path:
    return request.param


@pytest.fixture(scope="session")
def case_meta(case_dir: Path) -> dict:
    return json.loads((case_dir / "case_meta.json").read_text())


_MODELS: dict[Path, torch.nn.Module] = {}


def reference_transformer(case_dir: Path):
    """The case's tiny transformer in float32, resampler rebuilt from its recipe (cached)."""
    if case_dir not in _MODELS:
        from echovideo_core import load_transformer
        from echovideo_core.testing.weight_recipe import recipe_tensors

        folder = case_dir / "pipeline" / "transformer"
        _MODELS[case_dir] = load_transformer(folder, extra_tensors=recipe_tensors(folder / "face_prj_wofc_recipe.json"))
    return _MODELS[case_dir]


@pytest.fixture(scope="session")
def tiny_transformer(case_dir: Path):
    return reference_transformer(case_dir)


_DRIFT: dict[Path, float] = {}


def kernel_drift(case_dir: Path) -> float:
    """How far this machine's float32 kernels are from those of the machine that made the
    reference: the max abs difference of the DiT output computed from the *stored* fused
    tokens and rotary tables (so our own code's layout choices play no part) against the
    stored output. 0.0 where the machines compute alike; then `as_released` must be bit-exact."""
    if case_dir not in _DRIFT:
        from safetensors.torch import load_file

        case = load_file(str(case_dir / "transformer_case.safetensors"))
        with torch.no_grad():
            out = reference_transformer(case_dir)(
                case["in.hidden_states"], timestep=case["in.timestep"], conditioning=case["mid.fused_encoder_hidden_states"],
                image_rotary_emb=(case["in.rotary_cos"], case["in.rotary_sin"])).sample
        _DRIFT[case_dir] = (out.double() - case["out.sample"].double()).abs().max().item()
    return _DRIFT[case_dir]


def skip_unless_kernels_match(case_dir: Path) -> None:
    drift = kernel_drift(case_dir)
    if drift != 0.0:
        pytest.skip(f"this CPU's float32 kernels round differently from the reference machine's (the DiT "
                    f"fed the stored fused tokens is {drift:.2g} off): bit-exactness is checked where they agree")
