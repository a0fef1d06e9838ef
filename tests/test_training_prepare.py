"""Data preparation: shards and index, clips without a face skipped and reported, resumable."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from echovideo_core.training.data import PreparedDataset, PreparedDataError
from echovideo_core.training.prepare import PrepareSettings, load_encoders, prepare_dataset, read_manifest
from training_fixtures import FRAMES, SIZE, make_clips, prepared_dataset, tiny_kit

SETTINGS = PrepareSettings(height=SIZE, width=SIZE, num_frames=FRAMES, windows_per_clip=1)


@pytest.fixture(scope="module")
def encoders():
    model, faces = tiny_kit()
    return load_encoders(model, faces)


def test_shards_hold_every_cached_tensor():
    dataset = PreparedDataset(prepared_dataset())
    assert len(dataset) == 8  # 4 clips x 2 windows
    item = dataset[3]
    assert item["latents"].shape == (3, 4, SIZE // 8, SIZE // 8)  # 9 frames -> 3 latent frames
    assert item["face_latent"].shape == item["latents"].shape
    assert item["face_latent"][1:].abs().sum() == 0 and item["face_latent"][0].abs().sum() > 0
    assert item["text"].shape == (226, 32) and item["siglip"].shape == (16, 32) and item["arcface"].shape == (512,)
    image, arcface, caption = dataset.identity(0)
    assert image.shape == (512, 512, 3) and caption.startswith("a person number")
    text, siglip = dataset.unconditional()
    assert text.shape == (1, 226, 32) and siglip.shape == (1, 16, 32)


def test_windows_of_a_clip_differ():
    dataset = PreparedDataset(prepared_dataset())
    assert not dataset[0]["latents"].equal(dataset[1]["latents"])


def test_clip_without_a_face_is_skipped_and_reported(tmp_path, encoders):
    manifest = make_clips(tmp_path / "videos", 3, without_face=(1,))
    report = prepare_dataset(read_manifest(manifest), tmp_path / "out", encoders, SETTINGS)
    assert report.prepared == 2 and len(report.skipped) == 1
    assert report.skipped[0][0].endswith("clip1.mp4") and "no face" in report.skipped[0][1]
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [Path(c["video"]).name for c in index["clips"]] == ["clip0.mp4", "clip2.mp4"]
    assert index["skipped"][0]["video"].endswith("clip1.mp4")


def test_too_short_clip_is_skipped_and_reported(tmp_path, encoders):
    manifest = make_clips(tmp_path / "videos", 1)
    long = PrepareSettings(height=SIZE, width=SIZE, num_frames=49)
    report = prepare_dataset(read_manifest(manifest), tmp_path / "out", encoders, long)
    assert report.prepared == 0 and "shorter than 49 frames" in report.skipped[0][1]


def test_rerun_reuses_finished_shards_without_rewriting(tmp_path, encoders):
    manifest = make_clips(tmp_path / "videos", 2)
    out = tmp_path / "out"
    prepare_dataset(read_manifest(manifest)[:1], out, encoders, SETTINGS)  # "interrupted" after clip 0
    shard = next((out / "shards").glob("*.safetensors"))
    before = shard.stat().st_mtime_ns, shard.stat().st_ino
    report = prepare_dataset(read_manifest(manifest), out, encoders, SETTINGS)
    assert (report.prepared, report.reused) == (1, 1)
    assert (shard.stat().st_mtime_ns, shard.stat().st_ino) == before
    assert len(PreparedDataset(out)) == 2
    assert not list(out.rglob(".*.tmp"))


def test_other_settings_refuse_an_existing_folder(tmp_path, encoders):
    manifest = make_clips(tmp_path / "videos", 1)
    prepare_dataset(read_manifest(manifest), tmp_path / "out", encoders, SETTINGS)
    other = PrepareSettings(height=SIZE, width=SIZE, num_frames=5)
    with pytest.raises(ValueError, match="prepared with other settings"):
        prepare_dataset(read_manifest(manifest), tmp_path / "out", encoders, other)


def test_missing_index_says_what_to_run(tmp_path):
    with pytest.raises(PreparedDataError, match="run `echovideo prepare-data"):
        PreparedDataset(tmp_path)


def test_prepare_data_command(tmp_path):
    model, faces = tiny_kit()
    manifest = make_clips(tmp_path / "videos", 2, without_face=(0,))
    done = subprocess.run(
        [sys.executable, "-m", "echovideo_core", "prepare-data", "--videos", str(tmp_path / "videos"),
         "--captions", str(manifest), "--out", str(tmp_path / "out"), "--model", str(model),
         "--face-models", str(faces), "--size", f"{SIZE}x{SIZE}", "--frames", str(FRAMES), "--device", "cpu"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "prepared 1 clips, reused 0, skipped 1" in done.stdout
    shard = next((tmp_path / "out" / "shards").glob("*.safetensors"))
    with safe_open(str(shard), framework="pt") as f:
        assert set(f.keys()) == {"latents", "face_latent", "text", "siglip", "arcface", "identity_image"}


def test_unreadable_and_missing_clips_are_skipped_and_reported(tmp_path, encoders):
    from training_fixtures import write_manifest

    (tmp_path / "broken.mp4").write_bytes(b"not a video at all" * 50)
    manifest = write_manifest(tmp_path, [{"video": "broken.mp4", "caption": "x"}, {"video": "gone.mp4", "caption": "y"}])
    report = prepare_dataset(read_manifest(manifest), tmp_path / "out", encoders, SETTINGS)
    assert report.prepared == 0 and [Path(v).name for v, _ in report.skipped] == ["broken.mp4", "gone.mp4"]


def test_manifest_line_without_caption_names_the_line(tmp_path):
    path = tmp_path / "captions.jsonl"
    path.write_text('{"video": "a.mp4", "caption": "ok"}\n{"video": "b.mp4"}\n')
    with pytest.raises(ValueError, match=r"captions.jsonl:2: expected"):
        read_manifest(path)


def test_prepare_data_command_reports_bad_settings_in_one_line(tmp_path, capsys):
    from echovideo_core.cli import main

    manifest = tmp_path / "captions.jsonl"
    manifest.write_text("")
    rc = main(["prepare-data", "--videos", str(tmp_path), "--captions", str(manifest), "--out", str(tmp_path / "o"),
               "--model", str(tmp_path), "--face-models", str(tmp_path), "--frames", "48"])
    assert rc == 2
    assert capsys.readouterr().err.strip() == ("echovideo prepare-data: --frames: num_frames must be 4k+1 (1, 9, 17, ..., "
                                               "49), got 48; nearest valid values: 45 or 49")


def test_shard_names_do_not_depend_on_how_the_videos_path_was_typed(tmp_path, monkeypatch):
    from echovideo_core.training.prepare import shard_name

    manifest = tmp_path / "captions.jsonl"
    manifest.write_text('{"video": "clips/a.mp4", "caption": "x", "face": "faces/a.jpg"}\n')
    monkeypatch.chdir(tmp_path)
    typed = [read_manifest(manifest, videos)[0] for videos in ("data", "./data/", str(tmp_path / "data"))]
    assert len({shard_name(0, entry) for entry in typed}) == 1
    manifest.write_text('{"video": "clips/b.mp4", "caption": "x", "face": "faces/a.jpg"}\n')
    assert shard_name(0, read_manifest(manifest, "data")[0]) not in {shard_name(0, entry) for entry in typed}
