"""What a ComfyUI user sees (issue 11): latent previews for any channel count that can never
stop a run, warnings on the node that raised them and in the shipped workflows' Preview as
Text node, the pack's name on its log lines, and missing models named with the folder's
contents."""
from __future__ import annotations

import importlib
import logging

import pytest
import torch

import comfy_harness as harness
from echovideo_core.errors import MissingModelFilesError
from echovideo_core.interchange import COGVIDEOX_LATENT_RGB, latent_preview
from nodes_fixtures import api_workflow, basic_run, comfy_stub, tiny_kit  # noqa: F401 (fixtures)


def adapter():
    harness.load_pack()
    return importlib.import_module(f"{harness.PACK_NAME}.nodes.comfy_adapter")


def node(name: str):
    return harness.load_pack().NODE_CLASS_MAPPINGS[name]()


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 5, 16])
def test_the_latent_preview_is_an_rgb_picture_for_any_channel_count(channels):
    latents = torch.randn(1, 3, channels, 6, 10, generator=torch.Generator().manual_seed(channels))
    picture = latent_preview(latents)
    assert picture.shape == (6, 10, 3) and picture.abs().max() <= 1.0


def test_the_16_channel_preview_is_the_cogvideox_latent_to_rgb_map():
    latents = torch.zeros(1, 1, 16, 2, 2)
    latents[0, 0, 7] = 1.0  # one channel on: the picture is that channel's RGB row
    assert torch.equal(latent_preview(latents)[0, 0], torch.tensor(COGVIDEOX_LATENT_RGB[7]))


def test_a_preview_that_cannot_be_made_turns_previews_off_and_the_run_goes_on(comfy_stub, caplog):
    on_step = adapter().step_callback(3)
    empty = torch.zeros(1, 1, 4, 0, 0)  # no pixels: no picture can be made
    with caplog.at_level(logging.WARNING):
        for step in range(3):
            on_step(step, 3, empty)
    assert [(value, preview) for value, _, preview in comfy_stub["comfy.utils"].UPDATES] == [(1, None), (2, None), (3, None)]
    assert caplog.text.count("latent previews are off for the rest of this run") == 1


def test_the_tiny_kits_previews_are_rgb_jpegs(comfy_stub, basic_run):
    node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], width=64, height=64,
                                    frames=5, steps=2, cfg=6.0, dynamic_cfg="timestep", seed=1, scheduler="CogVideoXDPM")
    previews = [preview for _, _, preview in comfy_stub["comfy.utils"].UPDATES]
    assert [(kind, image.mode) for kind, image, _ in previews] == [("JPEG", "RGB")] * 2


def test_face_encode_shows_its_fallback_warnings_on_the_node(comfy_stub, basic_run):
    face, _, report = node("EchoVideoFaceEncode").encode(basic_run["3"][0], basic_run["4"][0], False, 0)
    assert face.method == "retinaface" and "insightface found no face" in report
    assert comfy_stub["server"].PromptServer.instance.texts == [(report, "5")]


def test_a_face_index_the_fallback_could_not_use_is_reported(comfy_stub, basic_run):
    report = node("EchoVideoFaceEncode").encode(basic_run["3"][0], basic_run["4"][0], False, 3)[2]
    assert "face_index=3 was not used" in report


def test_a_prompt_cut_to_226_tokens_is_shown_on_the_text_node(comfy_stub, basic_run):
    encoder = harness.run_workflow({k: v for k, v in api_workflow("echovideo_basic").items() if k == "2"})["2"][0]
    node("EchoVideoTextEncode").encode(encoder, " ".join(["a woman smiles and waves"] * 80), "")
    assert comfy_stub["server"].PromptServer.instance.texts == [
        ("prompt cut to 226 T5 tokens (the model's text length)", "5")]


def test_without_comfyui_showing_a_message_does_nothing():
    adapter().show_in_ui("nobody listens")  # no server module, no executing node: no error


def test_the_face_report_reaches_the_preview_as_text_node_of_the_shipped_workflows(basic_run):
    assert any(shown.startswith("face found by: retinaface") for shown in harness.PreviewAny.shown)


def test_log_lines_carry_the_packs_name(caplog):
    adapter().prefix_logs("echovideo_test_prefix")
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("echovideo_test_prefix.child").warning("fallback %s", "used")
        assert [r.getMessage() for r in caplog.records] == ["[EchoVideo] fallback used"]
    finally:
        logging.getLogger("echovideo_test_prefix").handlers.clear()


def test_a_missing_model_names_the_folder_and_what_it_holds(tiny_kit):
    from importlib import import_module

    choices = import_module(f"{harness.PACK_NAME}.nodes.model_choices")
    with pytest.raises(MissingModelFilesError, match=r"echovideo: it holds EchoVideo/"):
        choices.transformer_path("NotThere")
