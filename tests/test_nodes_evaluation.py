"""EchoVideo Identity Score without ComfyUI: in the basic workflow, and on frames with known faces."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import comfy_harness as harness
from echovideo_core.testing.tiny_metric_models import marker_face
from nodes_fixtures import api_workflow, basic_run, tiny_kit  # noqa: F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:.*estimate.*deprecated:FutureWarning")


def node(name: str):
    return harness.load_pack().NODE_CLASS_MAPPINGS[name]()


def as_image(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def test_basic_workflow_scores_its_frames_and_shows_the_plot_and_the_text(basic_run):
    plot, text = basic_run["13"]
    frames = api_workflow("echovideo_basic")["8"]["inputs"]["frames"]
    assert tuple(plot.shape) == (1, 480, 960, 3) and plot.dtype == torch.float32 and 0 <= plot.min() <= plot.max() <= 1
    scored, missed = (int(n) for n in re.search(r"frames: (\d+) scored, (\d+) missed \(no face\)", text).groups())
    assert scored + missed == frames  # the video is short: every frame is scored, or reported as a miss
    assert "the reference face was found by retinaface" in text  # the workflow's photo goes through the fallback
    assert basic_run["15"] == (text,)  # Preview as Text shows it


def test_identity_score_node_gives_1_for_the_encoded_face_and_marks_a_frame_without_face(basic_run):
    face_models = basic_run["3"][0]
    face = node("EchoVideoFaceEncode").encode(face_models, as_image([marker_face(0)]), False, 0)[0]
    frames = as_image([marker_face(0), np.full((640, 640, 3), 128, np.uint8), marker_face(0, cell=(12, 5))])
    plot, text = node("EchoVideoIdentityScore").score(face_models, face, frames, 32, 16.0)
    assert "FaceSim-Arc / Identity Average 1.000, Identity Variation 0.000" in text
    assert "frames: 2 scored, 1 missed (no face)" in text and "use `echovideo eval`" in text
    assert tuple(plot.shape) == (1, 480, 960, 3)


def test_missing_matplotlib_disables_only_the_identity_score_node(monkeypatch):
    pack = harness.load_pack_without("matplotlib", monkeypatch)
    assert set(pack.DISABLED_NODES) == {"EchoVideoIdentityScore"}
    assert "matplotlib" in pack.DISABLED_NODES["EchoVideoIdentityScore"]
