"""The ComfyUI boundary (nodes/comfy_adapter.py) with ComfyUI's modules replaced by
tests/comfy_stub: model folders, progress bar with previews, Cancel, memory requests; and
the fallbacks without ComfyUI."""
from __future__ import annotations

import importlib
from pathlib import Path

import PIL.Image
import pytest
import torch

import comfy_harness as harness
from nodes_fixtures import basic_run, comfy_stub, tiny_kit  # noqa: F401 (fixtures)


def adapter():
    harness.load_pack()
    return importlib.import_module(f"{harness.PACK_NAME}.nodes.comfy_adapter")


def node(name: str):
    return harness.load_pack().NODE_CLASS_MAPPINGS[name]()


def run_sampler(run: dict, steps: int):
    return node("EchoVideoSampler").sample(run["1"][0], run["7"][0], run["5"][0], width=64, height=64, frames=5,
                                           steps=steps, cfg=6.0, dynamic_cfg="as_released", seed=1, scheduler="CogVideoXDPM")


def test_without_comfyui_model_folders_come_from_the_environment_variable(tiny_kit):
    assert adapter().model_dirs("vae") == [tiny_kit / "vae"]
    assert adapter().model_dirs("text_encoders") == [tiny_kit / "text_encoders", tiny_kit / "clip"]


def test_without_comfyui_or_the_variable_loaders_list_a_placeholder(monkeypatch):
    monkeypatch.delenv("ECHOVIDEO_COMFY_MODELS", raising=False)
    spec = node("EchoVideoModelLoader").INPUT_TYPES()["required"]
    assert spec["model"][0] == ["(none found)"]


def test_our_model_folders_are_registered_with_comfyui(comfy_stub, tiny_kit):
    adapter().register_model_folders()
    folders = comfy_stub["folder_paths"].folder_names_and_paths
    for kind in ("echovideo", "insightface", "facexlib"):
        assert folders[kind][0][0] == str(tiny_kit / kind)
    spec = node("EchoVideoFaceModelsLoader").INPUT_TYPES()["required"]
    assert "insightface/models/antelopev2" in spec["antelopev2"][0]
    assert "facexlib/parsing_bisenet.pth" in spec["parser"][0]
    assert "t5xxl_fp16.safetensors" in node("EchoVideoTextEncoderLoader").INPUT_TYPES()["required"]["text_encoder"][0]


def test_sampler_advances_comfyui_progress_bar_every_step_with_a_preview(comfy_stub, basic_run):
    run_sampler(basic_run, steps=3)
    updates = comfy_stub["comfy.utils"].UPDATES
    assert [(value, total) for value, total, _ in updates] == [(1, 3), (2, 3), (3, 3)]
    kind, picture, size = updates[-1][2]
    assert kind == "JPEG" and isinstance(picture, PIL.Image.Image) and picture.size == (8, 8) and size == 512


def test_previews_are_skipped_when_comfyui_turns_them_off(comfy_stub, basic_run):
    cli_args = comfy_stub["comfy.cli_args"]
    cli_args.args.preview_method = cli_args.LatentPreviewMethod.NoPreviews
    try:
        run_sampler(basic_run, steps=2)
    finally:
        cli_args.args.preview_method = cli_args.LatentPreviewMethod.Auto
    assert [preview for _, _, preview in comfy_stub["comfy.utils"].UPDATES] == [None, None]


def test_cancel_is_checked_before_every_transformer_block_and_after_every_step(comfy_stub, basic_run):
    blocks = len(basic_run["1"][0].transformer.transformer_blocks)
    run_sampler(basic_run, steps=3)
    assert comfy_stub["comfy.model_management"].CHECKS == 3 * (blocks + 1)


def test_cancel_stops_sampling_inside_the_first_step(comfy_stub, basic_run):
    model_management = comfy_stub["comfy.model_management"]
    model_management.INTERRUPT_AFTER = 1  # the first check: before the first transformer block
    with pytest.raises(model_management.InterruptProcessingException):
        run_sampler(basic_run, steps=10)
    assert comfy_stub["comfy.utils"].UPDATES == [] and model_management.CHECKS == 1
    assert not basic_run["1"][0].transformer.transformer_blocks[0]._forward_pre_hooks  # the hooks are gone


def test_cancel_stops_decoding(comfy_stub, basic_run):
    model_management = comfy_stub["comfy.model_management"]
    model_management.INTERRUPT_AFTER = 1
    with pytest.raises(model_management.InterruptProcessingException):
        node("EchoVideoDecode").decode(basic_run["1"][0], basic_run["8"][0], "fp32", False)
    model_management.INTERRUPT_AFTER = None
    frames = node("EchoVideoDecode").decode(basic_run["1"][0], basic_run["8"][0], "fp32", False)[0]
    assert model_management.CHECKS > 2 and frames.shape[0] == 9  # checked between decoder blocks


def test_model_offload_asks_for_room_first_and_moves_the_model_back_even_on_error(basic_run):
    from echovideo_core.placement import Placement, module_bytes, running_on

    transformer = basic_run["1"][0].transformer
    cpu = torch.device("cpu")
    requests = []
    with pytest.raises(RuntimeError, match="stop"):
        with running_on(transformer, Placement("model_offload", cpu, cpu), lambda n, d: requests.append((n, d))):
            raise RuntimeError("stop")
    assert requests == [(module_bytes(transformer), cpu)] and transformer.device == cpu


def test_make_room_asks_comfyui_to_free_gpu_memory_only(comfy_stub):
    adapter().make_room(1000, torch.device("cuda"))
    adapter().make_room(1000, torch.device("cpu"))
    assert comfy_stub["comfy.model_management"].FREE_REQUESTS == [(1200, torch.device("cuda"))]


def load_model(placement: str):
    return node("EchoVideoModelLoader").load("EchoVideo", "(from model folder)", "fp32", placement, "default")[0]


def sample_with(model, run: dict, steps: int = 1):
    return node("EchoVideoSampler").sample(model, run["7"][0], run["5"][0], width=64, height=64, frames=5, steps=steps,
                                           cfg=6.0, dynamic_cfg="as_released", seed=1, scheduler="CogVideoXDPM")


def held_modules(model_management) -> list:
    return [loaded.model.model.module for loaded in model_management.current_loaded_models]


def test_inside_comfyui_each_model_runs_after_load_models_gpu_with_the_placement_devices(comfy_stub, basic_run):
    model = load_model("main_device")
    sample_with(model, basic_run)
    requests = comfy_stub["comfy.model_management"].LOAD_REQUESTS
    assert [[p.model.module for p in patchers] for patchers, _ in requests] == [[model.vae], [model.transformer]]
    assert all(full for _, full in requests)  # our plain torch layers cannot run half loaded
    patcher = requests[1][0][0]
    assert (patcher.load_device, patcher.offload_device) == (model.placement.execution_device, model.placement.offload_device)


def test_main_device_models_stay_in_comfyui_loaded_models_until_comfyui_unloads_them(comfy_stub, basic_run):
    model_management = comfy_stub["comfy.model_management"]
    model = load_model("main_device")
    sample_with(model, basic_run)
    assert held_modules(model_management) == [model.transformer, model.vae]
    model_management.unload_all_models()
    sample_with(model, basic_run)
    first, again = model_management.LOAD_REQUESTS[1][0][0], model_management.LOAD_REQUESTS[3][0][0]
    assert again is first and held_modules(model_management) == [model.transformer, model.vae]


def test_model_offload_models_leave_comfyui_loaded_models_after_use_also_on_cancel(comfy_stub, basic_run):
    model_management = comfy_stub["comfy.model_management"]
    model = load_model("model_offload")
    model_management.INTERRUPT_AFTER = 1
    with pytest.raises(model_management.InterruptProcessingException):
        sample_with(model, basic_run, steps=3)
    assert len(model_management.LOAD_REQUESTS) == 2 and model_management.current_loaded_models == []


def test_a_layer_offloaded_dit_is_not_handed_to_comfyui(comfy_stub, basic_run):
    model = load_model("sequential_offload")
    sample_with(model, basic_run)
    loaded = [p.model.module for patchers, _ in comfy_stub["comfy.model_management"].LOAD_REQUESTS for p in patchers]
    assert loaded == [model.vae]


def test_without_comfyui_placements_carry_no_model_manager():
    assert adapter().placement("main_device").manager is None
