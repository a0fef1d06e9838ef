"""The pack as ComfyUI imports it: every node registered, declarations well formed, widget
limits that encode the model's limits, and optional dependencies that disable only their nodes."""
from __future__ import annotations

import sys

import pytest

import comfy_harness as harness

EXPECTED = {
    "EchoVideoModelLoader": "Load EchoVideo Model",
    "EchoVideoTextEncoderLoader": "Load EchoVideo Text Encoder",
    "EchoVideoFaceModelsLoader": "Load EchoVideo Face Models",
    "EchoVideoFaceEncode": "EchoVideo Face Encode",
    "EchoVideoTextEncode": "EchoVideo Text Encode",
    "EchoVideoIITFFuse": "EchoVideo IITF Fuse",
    "EchoVideoSampler": "EchoVideo Sampler",
    "EchoVideoDecode": "EchoVideo Decode",
    "EchoVideoIdentityScore": "EchoVideo Identity Score",
    "EchoVideoApplyIdentityNative": "EchoVideo Apply Identity (native)",
    "EchoVideoDPMSampler": "EchoVideo DPM Sampler (as released)",
    "EchoVideoScheduler": "EchoVideo Scheduler (as released)",
    "EchoVideoDynamicCFG": "EchoVideo Dynamic CFG",
    "EchoVideoNoise": "EchoVideo Noise (as released)",
}
NATIVE = {"EchoVideoApplyIdentityNative", "EchoVideoDPMSampler", "EchoVideoScheduler", "EchoVideoDynamicCFG", "EchoVideoNoise"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
OUR_TYPES = {"ECHO_MODEL", "ECHO_TEXT_ENCODER", "ECHO_FACE_MODELS", "ECHO_FACE", "ECHO_TEXT", "ECHO_COND", "IMAGE", "LATENT", "STRING"}
CORE_TYPES = {"MODEL", "CONDITIONING", "VAE", "SAMPLER", "SIGMAS", "NOISE"}  # core's own types  # the native nodes' ComfyUI types


def test_pack_registers_every_node_with_its_display_name():
    pack = harness.load_pack()
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == EXPECTED
    assert set(pack.NODE_CLASS_MAPPINGS) == set(EXPECTED)
    assert pack.DISABLED_NODES == {}


def test_importing_the_pack_does_not_import_comfyui():
    harness.load_pack()
    assert not {"comfy", "folder_paths", "latent_preview", "server"} & set(sys.modules)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_node_declarations_are_well_formed(name):
    cls = harness.load_pack().NODE_CLASS_MAPPINGS[name]
    assert cls.CATEGORY == ("EchoVideo/loaders" if name.endswith("Loader") else "EchoVideo/native" if name in NATIVE
                            else "EchoVideo")
    assert callable(getattr(cls(), cls.FUNCTION)) and cls.DESCRIPTION
    assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS)
    assert set(cls.RETURN_TYPES) <= OUR_TYPES | CORE_TYPES
    for input_name, (kind, options) in harness.input_specs(cls).items():
        assert isinstance(kind, list) or kind in WIDGET_TYPES | OUR_TYPES | CORE_TYPES, (input_name, kind)
        assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
        if isinstance(kind, list):
            assert kind and all(isinstance(v, str) for v in kind)
            assert options.get("default", kind[0]) in kind


def test_sampler_widgets_encode_the_model_limits_and_release_defaults():
    specs = harness.input_specs(harness.load_pack().NODE_CLASS_MAPPINGS["EchoVideoSampler"])
    frames = specs["frames"][1]
    assert (frames["default"], frames["min"], frames["max"], frames["step"]) == (49, 1, 49, 4)
    for side, default in (("width", 848), ("height", 480)):
        assert specs[side][1]["step"] == 16 and specs[side][1]["default"] == default and specs[side][1]["min"] % 16 == 0
    assert specs["steps"][1]["default"] == 50 and specs["steps"][1]["min"] == 1
    assert specs["cfg"][1]["default"] == 6.0
    assert specs["dynamic_cfg"][0] == ["timestep", "step_index", "constant"] and specs["dynamic_cfg"][1]["default"] == "timestep"
    assert specs["scheduler"][0] == ["CogVideoXDPM", "CogVideoXDDIM"] and specs["scheduler"][1]["default"] == "CogVideoXDPM"
    assert specs["seed"][1]["control_after_generate"] is True


def test_missing_optional_dependency_disables_only_the_nodes_that_need_it(monkeypatch, caplog):
    pack = harness.load_pack_without("insightface", monkeypatch)
    assert set(pack.DISABLED_NODES) == {"EchoVideoFaceModelsLoader", "EchoVideoFaceEncode"}
    assert "insightface" in pack.DISABLED_NODES["EchoVideoFaceEncode"]
    assert set(pack.NODE_CLASS_MAPPINGS) == set(EXPECTED) - set(pack.DISABLED_NODES)
    assert "EchoVideoFaceEncode disabled" in caplog.text


def test_a_group_that_fails_to_import_is_disabled_without_breaking_the_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "echovideo_core.stages", None)  # any import of it now fails
    try:
        pack = harness.load_pack("ComfyUI_EchoVideo_broken_stages")
    finally:
        for key in [k for k in sys.modules if k.startswith("ComfyUI_EchoVideo_broken_stages")]:
            del sys.modules[key]
    assert set(pack.NODE_CLASS_MAPPINGS) == {"EchoVideoModelLoader", "EchoVideoTextEncoderLoader",
                                             "EchoVideoFaceModelsLoader", "EchoVideoIdentityScore"} | NATIVE
    assert "ModuleNotFoundError" in pack.DISABLED_NODES["sampler"] or "ImportError" in pack.DISABLED_NODES["sampler"]
