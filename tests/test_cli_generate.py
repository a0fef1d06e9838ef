"""`echovideo generate` / `tiny-model` / `demo` on the tiny kit: a playable mp4 comes out."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from echovideo_core.cli import main
from echovideo_core.io import read_video
from pipeline_kit import tiny_model_dir, write_identity_files


@pytest.fixture
def identity_files(tmp_path):
    return write_identity_files(tmp_path)


def generate_args(identity_files, out, *extra):
    image, arcface = identity_files
    return ["generate", "--model", str(tiny_model_dir()), "--identity-image", str(image), "--arcface", str(arcface),
            "--prompt", "a person smiles", "--out", str(out), "--size", "64x96", "--frames", "9", "--steps", "3",
            "--seed", "5", *extra]


def test_generate_writes_a_playable_mp4(identity_files, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(generate_args(identity_files, out)) == 0
    video = read_video(out)
    assert video.shape == (9, 64, 96, 3)
    summary = capsys.readouterr().out
    assert "9 frames 64x96 (HxW)" in summary and "seed 5" in summary  # the order --size takes


def test_generate_refuses_to_overwrite(identity_files, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep")
    assert main(generate_args(identity_files, out)) == 2
    assert out.read_bytes() == b"keep"


def test_generate_rejects_invalid_frames(identity_files, tmp_path, capsys):
    assert main(generate_args(identity_files, tmp_path / "out.mp4", "--frames", "10")) == 2
    assert "--frames: num_frames must be 4k+1" in capsys.readouterr().err


def _tiny_lora(path, scale: float) -> None:
    """A rank-2 LoRA on the first block's query projection of the tiny kit's transformer."""
    import json

    import torch

    from echovideo_core.lora import save_lora

    config = json.loads((tiny_model_dir() / "transformer" / "config.json").read_text())
    inner = config["num_attention_heads"] * config["attention_head_dim"]
    g = torch.Generator().manual_seed(0)
    tensors = {"transformer_blocks.0.attn1.to_q.lora_A.weight": torch.randn(2, inner, generator=g) * scale,
               "transformer_blocks.0.attn1.to_q.lora_B.weight": torch.randn(inner, 2, generator=g) * scale}
    save_lora(tensors, path, rank=2, alpha=2.0)


def test_generate_merges_a_lora_and_its_strength_matters(identity_files, tmp_path):
    _tiny_lora(tmp_path / "style.safetensors", scale=1.0)
    videos = {}
    for name, extra in {"base": [], "zero": ["--lora-strength", "0"], "full": []}.items():
        lora = [] if name == "base" else ["--lora", str(tmp_path / "style.safetensors")]
        assert main(generate_args(identity_files, tmp_path / f"{name}.mp4", *lora, *extra)) == 0
        videos[name] = read_video(tmp_path / f"{name}.mp4").astype(int)
    assert np.array_equal(videos["base"], videos["zero"])
    assert np.abs(videos["base"] - videos["full"]).max() > 0


def test_generate_refuses_a_lora_for_another_model(identity_files, tmp_path, capsys):
    from echovideo_core.lora import save_lora

    import torch

    save_lora({"nowhere.lora_A.weight": torch.zeros(2, 4), "nowhere.lora_B.weight": torch.zeros(4, 2)},
              tmp_path / "other.safetensors", rank=2, alpha=2.0)
    assert main(generate_args(identity_files, tmp_path / "o.mp4", "--lora", str(tmp_path / "other.safetensors"))) == 2
    error = capsys.readouterr().err
    assert "does not fit this model" in error and "nowhere" in error
    assert not (tmp_path / "o.mp4").exists()


def test_generate_needs_a_face(tmp_path, capsys):
    assert main(["generate", "--model", str(tiny_model_dir()), "--prompt", "x", "--out", str(tmp_path / "o.mp4")]) == 2
    assert "give --face PHOTO" in capsys.readouterr().err


def test_tiny_model_command_writes_the_released_layout(tmp_path):
    assert main(["tiny-model", str(tmp_path / "tiny")]) == 0
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "clip_visual_encoder"):
        assert (tmp_path / "tiny" / name).is_dir()


def test_demo_without_real_model_runs_the_tiny_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECHOVIDEO_MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "demo" / "demo.mp4"
    assert main(["demo", "--out", str(out)]) == 0
    assert read_video(out).shape == (9, 64, 64, 3)
    assert f"(tiny random model from {tmp_path / 'cache' / 'echovideo' / 'tiny-model'}: noise)" in capsys.readouterr().out


def test_demo_rerun_keeps_the_earlier_video_and_writes_the_next_free_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOVIDEO_MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "demo.mp4"
    out.write_bytes(b"the user's earlier video")
    assert main(["demo", "--out", str(out)]) == 0
    assert out.read_bytes() == b"the user's earlier video"
    assert read_video(tmp_path / "demo-1.mp4").shape == (9, 64, 64, 3)


def marker_photo(path):
    """A grey photo with a magenta square: the tiny face detector's 'face' (see tiny_face_models)."""
    photo = np.full((320, 320, 3), 128, np.uint8)
    photo[120:184, 120:184] = (255, 0, 255)
    PIL.Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def model_with_face_models(tmp_path):
    from echovideo_core.testing.tiny_face_models import write_tiny_face_models

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler", "clip_visual_encoder"):
        (folder / name).symlink_to(tiny_model_dir() / name)
    write_tiny_face_models(folder / "face_encoder")
    return folder


def test_generate_prepares_the_face_photo(model_with_face_models, tmp_path):
    out = tmp_path / "face.mp4"
    args = ["generate", "--model", str(model_with_face_models), "--face", str(marker_photo(tmp_path / "p.png")),
            "--prompt", "a person smiles", "--out", str(out), "--size", "64x64", "--frames", "9", "--steps", "2"]
    assert main(args) == 0
    assert read_video(out).shape == (9, 64, 64, 3)


def test_demo_uses_the_model_folder_when_present(model_with_face_models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ECHOVIDEO_MODEL_DIR", str(model_with_face_models))
    out = tmp_path / "demo.mp4"
    args = ["demo", "--out", str(out), "--face", str(marker_photo(tmp_path / "p.png")),
            "--size", "64x64", "--frames", "9", "--steps", "2"]
    assert main(args) == 0
    assert read_video(out).shape == (9, 64, 64, 3)
    assert "noise" not in capsys.readouterr().out


def test_python_dash_m_is_the_same_cli():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "echovideo_core", "generate", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--identity-image" in result.stdout


def test_generate_with_low_bit_weights_and_offload_writes_latents_close_to_the_full_precision_run(identity_files, tmp_path):
    """--weights fp8 changes the numbers a little (docs/weights.md); --offload does not at all."""
    full, fp8, offloaded = (tmp_path / f"{name}.npy" for name in ("full", "fp8", "offloaded"))
    assert main(generate_args(identity_files, tmp_path / "a.mp4", "--save-latents", str(full))) == 0
    assert main(generate_args(identity_files, tmp_path / "b.mp4", "--save-latents", str(fp8), "--weights", "fp8")) == 0
    assert main(generate_args(identity_files, tmp_path / "c.mp4", "--save-latents", str(offloaded),
                              "--offload", "blocks:1", "--vae-tiling")) == 0
    reference = np.load(full)
    assert np.array_equal(np.load(offloaded), reference)
    assert 0 < np.abs(np.load(fp8) - reference).max() < 0.1


def test_generate_reads_a_converted_gguf_transformer_file(identity_files, tmp_path):
    gguf = tmp_path / "dit-q8_0.gguf"
    assert main(["convert", "--model", str(tiny_model_dir()), "--to", "gguf-q8_0", "--out", str(gguf)]) == 0
    assert main(generate_args(identity_files, tmp_path / "g.mp4", "--transformer-file", str(gguf))) == 0
    assert read_video(tmp_path / "g.mp4").shape == (9, 64, 96, 3)


def test_a_missing_transformer_file_is_named_before_loading(identity_files, tmp_path, capsys):
    assert main(generate_args(identity_files, tmp_path / "x.mp4", "--transformer-file", str(tmp_path / "no.gguf"))) == 2
    error = capsys.readouterr().err
    assert "--transformer-file" in error and "no.gguf" in error
