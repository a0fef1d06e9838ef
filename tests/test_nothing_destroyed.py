"""Nothing of the user's is destroyed: every place that writes or removes files (the audit
table in docs/development.md) keeps what it did not write, and replaces what it wrote only
when asked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from echovideo_core.cli import main
from echovideo_core.errors import OutputExistsError

USERS = b"the user's bytes"


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_staged_files_refuse_an_existing_file_before_moving_any(tmp_path):
    from echovideo_core.atomic import staged_files

    (tmp_path / "b.txt").write_bytes(USERS)
    with pytest.raises(OutputExistsError, match="b.txt"):
        with staged_files(tmp_path) as stage:
            (stage / "a.txt").write_text("new")
            (stage / "b.txt").write_text("new")
    assert snapshot(tmp_path) == {"b.txt": USERS}  # a.txt did not land either, no staging folder is left


def test_staged_files_with_overwrite_replace_only_their_own_files(tmp_path):
    from echovideo_core.atomic import staged_files

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.txt").write_bytes(USERS)
    (tmp_path / "sub" / "theirs.txt").write_bytes(b"old")
    with staged_files(tmp_path, overwrite=True) as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "theirs.txt").write_text("new")
    assert snapshot(tmp_path) == {"sub/mine.txt": USERS, "sub/theirs.txt": b"new"}


def test_staged_files_leave_no_staging_folder_when_the_writer_fails(tmp_path):
    from echovideo_core.atomic import staged_files

    with pytest.raises(RuntimeError):
        with staged_files(tmp_path) as stage:
            (stage / "a.txt").write_text("half")
            raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_tiny_model_with_overwrite_replaces_only_its_own_files(tmp_path, capsys):
    folder = tmp_path / "tiny"
    assert main(["tiny-model", str(folder)]) == 0
    (folder / "notes.txt").write_bytes(USERS)
    (folder / "transformer" / "extra-shard.safetensors").write_bytes(USERS)
    (folder / "model_index.json").write_text(json.dumps({"_tiny_kit_version": 0}))  # an older tiny model
    assert main(["tiny-model", str(folder), "--overwrite", "--seed", "1"]) == 0
    assert (folder / "notes.txt").read_bytes() == USERS
    assert (folder / "transformer" / "extra-shard.safetensors").read_bytes() == USERS
    assert json.loads((folder / "model_index.json").read_text())["_tiny_kit_version"] > 0
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_tiny_model_never_replaces_a_real_model_even_with_overwrite(tmp_path, capsys):
    folder = tmp_path / "EchoVideo"
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(USERS)
    (folder / "model_index.json").write_text('{"_class_name": "EchoVideoPipeline"}')
    before = snapshot(folder)
    assert main(["tiny-model", str(folder), "--overwrite"]) == 2
    assert "it is never replaced" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_tiny_kit_refuses_a_models_folder_holding_a_file_it_would_write(tmp_path, capsys):
    models = tmp_path / "models"
    (models / "text_encoders").mkdir(parents=True)
    (models / "text_encoders" / "t5xxl_fp16.safetensors").write_bytes(USERS)
    (models / "checkpoints").mkdir()  # any other content of a ComfyUI models/ folder is fine
    before = snapshot(models)
    assert main(["tiny-kit", "--comfy-models", str(models)]) == 2
    assert "text_encoders/t5xxl_fp16.safetensors" in capsys.readouterr().err
    assert snapshot(models) == before


def test_synthetic_clips_keep_existing_clips_unless_overwrite(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "clip0.mp4").write_bytes(USERS)
    (tmp_path / "clips" / "other.txt").write_bytes(USERS)
    assert main(["synthetic-clips", "--out", str(tmp_path / "clips"), "--count", "1", "--frames", "2"]) == 2
    assert snapshot(tmp_path / "clips") == {"clip0.mp4": USERS, "other.txt": USERS}
    assert main(["synthetic-clips", "--out", str(tmp_path / "clips"), "--count", "1", "--frames", "2", "--overwrite"]) == 0
    assert (tmp_path / "clips" / "clip0.mp4").read_bytes() != USERS
    assert (tmp_path / "clips" / "other.txt").read_bytes() == USERS
    assert (tmp_path / "clips" / "captions.jsonl").is_file()


def test_png_frames_refuse_an_existing_frame(tmp_path):
    from echovideo_core.io import save_png_frames

    (tmp_path / "frame_00001.png").write_bytes(USERS)
    with pytest.raises(OutputExistsError, match="frame_00001.png"):
        save_png_frames(np.zeros((2, 8, 8, 3), np.uint8), tmp_path)
    assert (tmp_path / "frame_00001.png").read_bytes() == USERS


def test_a_lora_export_never_replaces_a_file(tmp_path):
    import torch

    from echovideo_core.training.checkpoint import export_lora

    (tmp_path / "lora.safetensors").write_bytes(USERS)
    with pytest.raises(OutputExistsError, match="exports never overwrite"):
        export_lora({"a.lora_A.weight": torch.zeros(1, 1)}, tmp_path / "lora.safetensors", rank=1, alpha=1.0)
    assert (tmp_path / "lora.safetensors").read_bytes() == USERS


def test_pruning_removes_only_finished_checkpoints_of_the_run(tmp_path):
    from echovideo_core.training.checkpoint import STATE_NAME, prune_checkpoints

    for step in (1, 2, 3):
        (tmp_path / f"checkpoint-{step:08d}").mkdir()
        (tmp_path / f"checkpoint-{step:08d}" / STATE_NAME).write_text(json.dumps({"step": step}))
    (tmp_path / "checkpoint-00000000").mkdir()  # no state file: not a finished checkpoint of ours
    (tmp_path / "checkpoint-notes").mkdir()
    removed = prune_checkpoints(tmp_path, keep_last=1)
    assert [p.name for p in removed] == ["checkpoint-00000001", "checkpoint-00000002"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-00000000", "checkpoint-00000003", "checkpoint-notes"]
