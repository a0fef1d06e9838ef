"""Every shipped API-format workflow runs end to end over the node mappings on the tiny kit."""
from __future__ import annotations

import pytest
import torch

import comfy_harness as harness
from nodes_fixtures import api_workflow, basic_run, tiny_kit  # noqa: F401 (fixtures)

API_WORKFLOWS = sorted(p.stem for p in (harness.WORKFLOWS / "api").glob("*.json"))


def test_basic_multi_reference_and_native_api_workflows_are_shipped():
    assert {"echovideo_basic", "echovideo_multi_reference", "echovideo_native"} <= set(API_WORKFLOWS)


def test_native_api_workflow_uses_core_loaders_sampling_and_decode():
    """The native workflow's DiT, T5, VAE, guidance, sampling loop and decode are core nodes
    (it runs in a real ComfyUI: tests/test_comfyui_live.py)."""
    types = {n["class_type"] for n in api_workflow("echovideo_native").values()}
    assert set(harness.DECLARED_CORE_NODES) <= types
    assert "EchoVideoSampler" not in types and "EchoVideoDecode" not in types
    clip = next(n for n in api_workflow("echovideo_native").values() if n["class_type"] == "CLIPLoader")
    assert clip["inputs"]["type"] == "cogvideox"


@pytest.mark.parametrize("name", API_WORKFLOWS)
def test_api_workflow_values_fit_the_node_definitions(name, tiny_kit):
    harness.validate(api_workflow(name), harness.all_nodes())


def _expected_frames(workflow: dict) -> tuple[int, int, int, int]:
    sampler = next(n["inputs"] for n in workflow.values() if n["class_type"] == "EchoVideoSampler")
    return (sampler["frames"], sampler["height"], sampler["width"], 3)


def test_basic_api_workflow_produces_frames_of_the_requested_shape(basic_run):
    video = basic_run["10"][0]  # what Create Video handed to Save Video
    assert tuple(video.images.shape) == _expected_frames(api_workflow("echovideo_basic"))
    assert video.images.dtype == torch.float32 and 0.0 <= video.images.min() and video.images.max() <= 1.0
    assert video.fps == 16.0


def test_basic_api_workflow_reports_how_the_face_was_found(basic_run):
    report = basic_run["5"][2]
    assert report.startswith("face found by: retinaface")  # the tiny SCRFD only sees magenta markers
    assert "insightface found no face" in report


@pytest.mark.parametrize("name", [n for n in API_WORKFLOWS if n not in ("echovideo_basic", "echovideo_native")])
def test_other_api_workflows_run_to_frames_of_the_requested_shape(name, tiny_kit):
    workflow = api_workflow(name)
    harness.SaveVideo.saved.clear()
    harness.run_workflow(workflow)
    assert tuple(harness.SaveVideo.saved[-1].images.shape) == _expected_frames(workflow)


def test_an_invalid_widget_value_is_rejected_like_comfyui_does(tiny_kit):
    workflow = api_workflow("echovideo_basic")
    workflow["8"]["inputs"]["frames"] = 10
    with pytest.raises(harness.WorkflowError, match="frames=10 is not min \\+ k \\* 4"):
        harness.validate(workflow, harness.all_nodes())
