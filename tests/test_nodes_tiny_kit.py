"""`echovideo tiny-kit --comfy-models DIR`: the tiny kit in a ComfyUI models/ tree."""
from __future__ import annotations

import json

from echovideo_core.cli import build_parser, main
from echovideo_core.commands.tiny_kit import T5_VOCAB
from echovideo_core.loading.state_dict import read_state_dict
from nodes_fixtures import tiny_kit  # noqa: F401 (fixture)


def test_tiny_kit_is_a_cli_command_that_needs_the_models_folder():
    args = build_parser().parse_args(["tiny-kit", "--comfy-models", "somewhere"])
    assert str(args.comfy_models) == "somewhere" and args.seed == 0 and callable(args.run)


def test_tiny_kit_cli_writes_every_file_the_workflows_name(tmp_path, capsys):
    assert main(["tiny-kit", "--comfy-models", str(tmp_path)]) == 0
    assert "random weights" in capsys.readouterr().out
    expected = [
        "echovideo/EchoVideo/transformer/config.json", "echovideo/EchoVideo/vae/config.json",
        "echovideo/EchoVideo/text_encoder/config.json", "echovideo/EchoVideo/tokenizer/spiece.model",
        "echovideo/EchoVideo/scheduler/scheduler_config.json", "echovideo/EchoVideo/clip_visual_encoder/config.json",
        "echovideo/EchoVideo/face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx",
        "echovideo/EchoVideo/face_encoder/models/antelopev2/glintr100.onnx",
        "echovideo/EchoVideo/face_encoder/parsing_bisenet.pth", "echovideo/EchoVideo/face_encoder/detection_Resnet50_Final.pth",
        "text_encoders/t5xxl_fp16.safetensors", "insightface/models/antelopev2/scrfd_10g_bnkps.onnx",
        "insightface/models/antelopev2/glintr100.onnx", "facexlib/parsing_bisenet.pth", "facexlib/detection_Resnet50_Final.pth",
    ]
    assert [p for p in expected if not (tmp_path / p).is_file()] == []
    assert "noise" in json.loads((tmp_path / "echovideo/EchoVideo/model_index.json").read_text())["_note"]
    assert "random-weight" in (tmp_path / "echovideo/EchoVideo/TINY_KIT.txt").read_text()


def test_tiny_kit_t5_file_has_comfyui_layout_and_the_real_vocabulary(tiny_kit):
    state, metadata = read_state_dict(tiny_kit / "text_encoders" / "t5xxl_fp16.safetensors")
    assert metadata == {} and "encoder.embed_tokens.weight" not in state
    assert state["shared.weight"].shape[0] == T5_VOCAB and state["shared.weight"].dtype.itemsize == 2

