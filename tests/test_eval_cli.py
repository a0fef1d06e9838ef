"""`echovideo eval` end to end on the tiny face models: JSON, plot, batch CSV and summary."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from echovideo_core.cli import main
from echovideo_core.io import save_video
from echovideo_core.testing.tiny_metric_models import marker_face
from eval_fixtures import face_models_dir, full_models_dir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.filterwarnings("ignore:.*estimate.*deprecated:FutureWarning")
KEYS = {"facesim_arc", "facesim_cur", "identity_average", "identity_variation", "clip_score", "fid", "dynamic_degree",
        "copy_paste_ssim", "pose_spread", "frames_scored", "frames_missed", "per_frame", "notes"}


def write_video(path, identity: int = 0, blank: int | None = None, count: int = 8):
    frames = [marker_face(identity, cell=(6 + i % 4, 8), size=(320, 320)) for i in range(count)]
    if blank is not None:
        frames[blank] = np.full((320, 320, 3), 128, np.uint8)
    save_video(np.stack(frames), path)
    return path


def write_photo(path, identity: int = 0):
    Image.fromarray(marker_face(identity)).save(path)
    return path


def test_eval_writes_the_json_with_every_metric_and_the_plot(full_models_dir, tmp_path):
    video, face = write_video(tmp_path / "v.mp4", blank=4), write_photo(tmp_path / "face.png")
    out, plot = tmp_path / "out" / "v.json", tmp_path / "out" / "v.png"
    args = ["eval", "--video", str(video), "--face", str(face), "--face-models", str(full_models_dir),
            "--prompt", "a person smiles", "--frames", "3", "--json", str(out), "--plot", str(plot)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert KEYS <= set(data)
    assert (data["frames_scored"], data["frames_missed"]) == (2, 1) and len(data["per_frame"]) == 3
    assert [f["index"] for f in data["per_frame"]] == [0, 4, 7] and data["per_frame"][1]["face"] is False
    for key in ("facesim_arc", "facesim_cur", "clip_score", "fid", "copy_paste_ssim", "pose_spread", "dynamic_degree"):
        assert isinstance(data[key], float), key
    assert data["facesim_arc"] > 0.95 and data["identity_average"] == data["facesim_arc"]
    picture = Image.open(plot)
    assert picture.format == "PNG" and picture.size == (960, 480)


def test_eval_without_optional_weights_writes_null_metrics_with_notes_naming_the_files(face_models_dir, tmp_path):
    video, face = write_video(tmp_path / "v.mp4"), write_photo(tmp_path / "face.png")
    out = tmp_path / "v.json"
    assert main(["eval", "--video", str(video), "--face", str(face), "--face-models", str(face_models_dir),
                 "--frames", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["facesim_cur"] is None and data["fid"] is None and data["clip_score"] is None
    assert data["facesim_arc"] is not None
    notes = " ".join(data["notes"])
    assert "CurricularFace_Backbone.pth" in notes and "pt_inception-2015-12-05-6726825d.pth" in notes
    assert "no prompt given" in notes


def test_eval_batch_over_a_folder_writes_csv_and_the_papers_table_one_row_per_subfolder(face_models_dir, tmp_path):
    folder = tmp_path / "study"
    for group, identity in (("same", 0), ("other", 5)):
        (folder / group).mkdir(parents=True)
        write_video(folder / group / "v.mp4", identity=identity)
        (folder / group / "v.txt").write_text(f"prompt of {group}")
    face = write_photo(tmp_path / "face.png")
    table, rows, plot = tmp_path / "out" / "scores.csv", tmp_path / "out" / "scores.md", tmp_path / "out" / "study.png"
    assert main(["eval", "--batch", str(folder), "--face", str(face), "--face-models", str(face_models_dir),
                 "--frames", "2", "--csv", str(table), "--plot", str(plot), "--plot-dir", str(tmp_path / "plots")]) == 0
    lines = list(csv.DictReader(table.open()))
    assert [(row["group"], row["prompt"]) for row in lines] == [("other", "prompt of other"), ("same", "prompt of same")]
    assert float(lines[1]["facesim_arc"]) > float(lines[0]["facesim_arc"]) and lines[0]["fid"] == ""
    summary = rows.read_text()
    for column in ("Identity Average ↑", "Identity Variation ↓", "Inception Distance ↓", "Dynamic Degree ↑",
                   "FaceSim-Arc ↑", "FaceSim-Cur ↑", "CLIPScore ↑"):
        assert column in summary
    assert "\n| other | 1 | " in summary and "\n| same | 1 | " in summary
    assert Image.open(plot).size == (960, 480)
    plots = tmp_path / "plots"
    assert sorted(str(p.relative_to(plots)) for p in plots.rglob("*.png")) == ["other/v.png", "same/v.png"]


def test_eval_batch_reads_a_jsonl_manifest_with_paths_relative_to_it(face_models_dir, tmp_path):
    write_video(tmp_path / "a.mp4")
    write_photo(tmp_path / "a.png")
    manifest = tmp_path / "runs.jsonl"
    manifest.write_text(json.dumps({"video": "a.mp4", "face": "a.png", "prompt": "waves"}) + "\n")
    out = tmp_path / "runs.csv"
    assert main(["eval", "--batch", str(manifest), "--face-models", str(face_models_dir), "--frames", "2",
                 "--csv", str(out), "--json", str(tmp_path / "runs.json")]) == 0
    data = json.loads((tmp_path / "runs.json").read_text())
    assert data["summary"]["videos"] == 1 and data["videos"][0]["prompt"] == "waves"
    assert data["summary"]["identity_average"] == pytest.approx(data["videos"][0]["identity_average"])


def test_eval_refuses_to_replace_an_existing_output_before_loading_anything(face_models_dir, tmp_path, capsys):
    out = tmp_path / "v.json"
    out.write_text("mine")
    video, face = write_video(tmp_path / "v.mp4", count=2), write_photo(tmp_path / "face.png")
    assert main(["eval", "--video", str(video), "--face", str(face), "--face-models", str(face_models_dir),
                 "--json", str(out)]) == 2
    assert "v.json exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "mine"


def test_eval_reports_a_reference_photo_without_a_face_in_one_line(face_models_dir, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(blank)
    video = write_video(tmp_path / "v.mp4", count=2)
    assert main(["eval", "--video", str(video), "--face", str(blank), "--face-models", str(face_models_dir)]) == 2
    error = capsys.readouterr().err.splitlines()
    assert len(error) == 1 and error[0].startswith("echovideo eval: no face found in the photo")
