"""A user's mistake ends in one line naming the argument or file (exit 2), never a traceback,
never a lost file; every check runs before anything is loaded (issue 11).

Most cases call `echovideo_core.cli.main(argv)` in this process (the error boundary is in
`main`); a few run the real command line in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from echovideo_core.cli import main, run_command
from echovideo_core.errors import (EchoVideoError, InputFileError, MissingInputError, NotEnoughSpaceError,
                                   OutputExistsError, OutputPathError)
from pipeline_kit import tiny_inputs, tiny_model_dir

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
UNWRITABLE = Path("/sys")  # writing a file there fails even as root (EACCES), and in CI containers


def one_line(capsys) -> str:
    """The boundary's message: exactly one line on stderr, no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real command line, from the repository root (as CI runs it)."""
    return subprocess.run([sys.executable, "-m", "echovideo_core", *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    """A prepared identity image and ArcFace vector, and a folder for outputs."""
    image, arcface = tiny_inputs(64)
    PIL.Image.fromarray(image).save(tmp_path / "id.png")
    np.save(tmp_path / "arcface.npy", arcface)
    (tmp_path / "out").mkdir()
    return tmp_path


def generate(inputs: Path, *extra: str, out: str = "out/o.mp4") -> list[str]:
    return ["generate", "--model", str(tiny_model_dir()), "--identity-image", str(inputs / "id.png"),
            "--arcface", str(inputs / "arcface.npy"), "--prompt", "a person smiles", "--out", str(inputs / out),
            "--size", "64x64", "--frames", "9", "--steps", "2", *extra]


# ---- the command line, in a subprocess ---------------------------------------------------

def test_a_missing_photo_and_models_folder_is_one_line_without_a_traceback(tmp_path):
    done = cli("face", str(tmp_path / "missing.jpg"), "--models", str(tmp_path / "none"), "--out", str(tmp_path / "x.png"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"echovideo face: PHOTO {tmp_path / 'missing.jpg'}: no such file"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag, value", [("--fps", "0"), ("--steps", "2000")])
def test_a_bad_value_fails_before_torch_is_even_imported(tmp_path, flag, value):
    script = ("import sys\nfrom echovideo_core.cli import main\n"
              f"code = main(['generate', '--prompt', 'x', '--out', {str(tmp_path / 'o.mp4')!r}, '--face', 'p.jpg', "
              f"{flag!r}, {value!r}])\n"
              "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout.strip() == "[]"
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and done.stderr.startswith(f"echovideo generate: {flag}")
    assert not (tmp_path / "o.mp4").exists()


def test_tiny_model_refuses_a_folder_with_the_users_files_and_changes_nothing(tmp_path):
    folder = tmp_path / "mine"
    (folder / "transformer").mkdir(parents=True)
    (folder / "transformer" / "diffusion_pytorch_model-00001-of-00002.safetensors").write_bytes(b"the user's shard")
    (folder / "model_index.json").write_text('{"_class_name": "EchoVideoPipeline"}')
    before = snapshot(folder)
    done = cli("tiny-model", str(folder))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"echovideo tiny-model: FOLDER {folder} is not empty; choose a new or empty folder, "
                                   "or pass --overwrite (then only the files this command writes are replaced)")
    assert snapshot(folder) == before


# ---- the command line, in this process -----------------------------------------------------

def test_a_corrupt_identity_image_is_named_and_nothing_is_written(inputs, capsys):
    (inputs / "id.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert main(generate(inputs)) == 2
    line = one_line(capsys)
    assert line.startswith("echovideo generate: cannot decode the image --identity-image") and "id.png" in line
    assert list((inputs / "out").iterdir()) == []


def test_a_garbage_arcface_file_is_named(inputs, capsys):
    (inputs / "arcface.npy").write_text("0.1 0.2 0.3")
    assert main(generate(inputs)) == 2
    assert f"--arcface {inputs / 'arcface.npy'} is not a .npy array file" in one_line(capsys)


def test_truncated_model_weights_are_named_before_any_step_runs(inputs, capsys):
    import shutil

    model = shutil.copytree(tiny_model_dir(), inputs / "model")
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(generate(inputs)[:1] + ["--model", str(model)] + generate(inputs)[3:]) == 2
    line = one_line(capsys)
    assert str(weights) in line and "not a readable safetensors file" in line
    assert list((inputs / "out").iterdir()) == []


def test_a_garbage_lora_is_named_before_the_model_loads(inputs, capsys):
    (inputs / "style.safetensors").write_bytes(os.urandom(256))
    assert main(generate(inputs, "--lora", str(inputs / "style.safetensors"))) == 2
    assert f"{inputs / 'style.safetensors'} is not a readable safetensors file" in one_line(capsys)


def test_an_existing_output_is_kept_byte_for_byte(inputs, capsys):
    (inputs / "out" / "o.mp4").write_bytes(b"the user's video")
    assert main(generate(inputs)) == 2
    assert "--out" in one_line(capsys) and (inputs / "out" / "o.mp4").read_bytes() == b"the user's video"


def test_an_unwritable_output_folder_is_named(inputs, capsys):
    assert main(generate(inputs, out=str(UNWRITABLE / "o.mp4"))) == 2
    assert one_line(capsys).startswith(f"echovideo generate: --out {UNWRITABLE / 'o.mp4'}: cannot write in {UNWRITABLE}")


@pytest.mark.parametrize("name, content", [("truncated.jpg", "truncated"), ("text.png", "text"), ("bomb.png", "bomb")])
def test_a_photo_pillow_cannot_decode_is_named(tmp_path, capsys, name, content):
    photo = tmp_path / name
    if content == "truncated":
        PIL.Image.new("RGB", (64, 64), (200, 100, 50)).save(photo, quality=95)
        photo.write_bytes(photo.read_bytes()[:300])
    elif content == "text":
        photo.write_text("not an image at all")
    else:  # 20000 x 20000: Pillow refuses to decode more than 2 x 89 M pixels
        PIL.Image.new("1", (20000, 20000)).save(photo)
    (tmp_path / "models").mkdir()
    assert main(["face", str(photo), "--models", str(tmp_path / "models"), "--out", str(tmp_path / "f.png")]) == 2
    assert one_line(capsys).startswith(f"echovideo face: cannot decode the image {photo}")
    assert not (tmp_path / "f.png").exists()


def test_a_missing_face_models_folder_is_named(tmp_path, capsys):
    PIL.Image.new("RGB", (64, 64)).save(tmp_path / "p.png")
    assert main(["face", str(tmp_path / "p.png"), "--models", str(tmp_path / "none"), "--out", str(tmp_path / "f.png")]) == 2
    assert one_line(capsys) == f"echovideo face: --models {tmp_path / 'none'}: no such folder"


def test_prepare_data_with_a_folder_for_captions_is_one_line(tmp_path, capsys):
    for name in ("videos", "captions", "model", "faces"):
        (tmp_path / name).mkdir()
    args = ["prepare-data", "--videos", str(tmp_path / "videos"), "--captions", str(tmp_path / "captions"),
            "--out", str(tmp_path / "out"), "--model", str(tmp_path / "model"), "--face-models", str(tmp_path / "faces")]
    assert main(args) == 2
    assert one_line(capsys) == f"echovideo prepare-data: --captions {tmp_path / 'captions'} is a folder; give a file"


def test_train_with_invalid_yaml_names_the_file_and_line(tmp_path, capsys):
    (tmp_path / "train.yaml").write_text("max_steps: 10\nstage: [1, 2\nseed: 3\n")
    assert main(["train", "--config", str(tmp_path / "train.yaml")]) == 2
    line = one_line(capsys)
    assert line.startswith(f"echovideo train: --config {tmp_path / 'train.yaml'} is not valid YAML (line ")


def test_debug_shows_the_traceback(tmp_path, capsys):
    assert main(["--debug", "face", str(tmp_path / "missing.jpg"), "--models", str(tmp_path), "--out",
                 str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("no such file")


def test_a_full_disk_during_a_write_is_one_line(capsys):
    def fill_the_disk(_args):
        with open("/dev/full", "wb") as full:
            full.write(b"x" * 65536)

    assert run_command(fill_the_disk, None, name="generate") == 2
    assert one_line(capsys) == "echovideo generate: No space left on device; free some space or write somewhere else"


def test_a_bug_is_exit_1_with_one_line_pointing_at_debug(capsys):
    def bug(_args):
        raise KeyError("oops")

    assert run_command(bug, None, name="generate") == 1
    assert one_line(capsys) == ("echovideo generate: failed with KeyError: 'oops' (run `echovideo --debug generate ...` "
                                "for the traceback)")


# ---- every flag with an invalid value: exit 2, one line naming it ---------------------------------

def invalid_flag_cases(inputs: Path) -> list[tuple[list[str], str]]:
    """(argv, text the one line must contain) for each invalid value."""
    (inputs / "a_file").write_text("x")
    (inputs / "bad.yaml").write_text("max_steps: [\n")
    (inputs / "unknown.yaml").write_text("max_stepz: 3\n")
    (inputs / "clips").mkdir()
    (inputs / "captions.jsonl").write_text('{"video": "a.mp4", "caption": "x"}\n')
    prepare = ["prepare-data", "--videos", str(inputs / "clips"), "--captions", str(inputs / "captions.jsonl"),
               "--out", str(inputs / "prepared"), "--model", str(tiny_model_dir()), "--face-models", str(inputs)]
    demo = ["demo", "--out", str(inputs / "out" / "d.mp4"), "--tiny"]
    face = ["face", str(inputs / "id.png"), "--models", str(inputs), "--out", str(inputs / "out" / "f.png")]
    cases = [(generate(inputs, flag, value), flag) for flag, values in {
        "--size": ["100x100", "0x64", "64", "axb"], "--frames": ["10", "0", "53", "x"],
        "--steps": ["0", "2000", "-1", "1.5"], "--guidance": ["-1", "nan", "inf"], "--fps": ["0", "1000", "-5"],
        "--seed": ["-1", str(2**64)], "--mode": ["fast"], "--scheduler": ["euler"], "--dtype": ["int8"],
        "--device": ["potato"], "--lora-strength": ["nan"],
    }.items() for value in values]
    cases += [
        (generate(inputs, "--lora-strength", "0.5"), "--lora-strength"),
        (generate(inputs, out="out"), "--out"),
        (generate(inputs, out="nowhere/o.mp4"), "--out"),
        (generate(inputs, "--png-dir", str(inputs / "a_file")), "--png-dir"),
        (generate(inputs, "--lora", str(inputs / "none.safetensors")), "--lora"),
        (generate(inputs)[:5] + ["--prompt", "x", "--out", str(inputs / "o.mp4")], "--arcface"),
        (generate(inputs)[:1] + ["--model", str(inputs / "none")] + generate(inputs)[3:], "--model"),
        ([*demo, "--size", "100x100"], "--size"), ([*demo, "--frames", "10"], "--frames"),
        ([*demo, "--steps", "0"], "--steps"), ([*demo, "--fps", "0"], "--fps"),
        ([*demo, "--face", str(inputs / "none.jpg")], "--face"),
        ([*face, "--face-index", "-1"], "--face-index"),
        (face[:-1] + [str(inputs / "out" / "f.unknown")], "--out"),
        (face[:3] + [str(inputs / "none")] + face[4:], "--models"),
        (["tiny-model", str(inputs / "t"), "--seed", "-1"], "--seed"),
        (["tiny-model", str(inputs / "a_file")], "FOLDER"),
        (["tiny-kit", "--comfy-models", str(inputs / "a_file")], "--comfy-models"),
        (["synthetic-clips", "--out", str(inputs / "c"), "--count", "0"], "--count"),
        (["synthetic-clips", "--out", str(inputs / "c"), "--size", "97"], "--size"),
        ([*prepare, "--size", "10x10"], "--size"), ([*prepare, "--frames", "10"], "--frames"),
        ([*prepare, "--stride", "0"], "--stride"), ([*prepare, "--windows", "0"], "--windows"),
        ([*prepare, "--seed", "-1"], "--seed"),
        (["train", "--config", str(inputs / "none.yaml")], "--config"),
        (["train", "--config", str(inputs / "bad.yaml")], "--config"),
        (["train", "--config", str(inputs / "unknown.yaml")], "max_stepz"),
        (["train", "--config", str(inputs / "unknown.yaml"), "--max-steps", "0"], "--max-steps"),
        (["--threads", "0", *face], "--threads"),
        (["eval", "--video", str(inputs / "none.mp4"), "--face", str(inputs / "id.png"), "--face-models", str(inputs)],
         "--video"),
        (["eval", "--video", str(inputs / "a_file"), "--face", str(inputs / "id.png"), "--face-models",
          str(inputs / "none")], "--face-models"),
        (["eval", "--batch", str(inputs / "clips"), "--face-models", str(inputs), "--csv", str(inputs / "a_file")],
         "a_file"),
        (generate(inputs, "--identity-strength", "nan"), "--identity-strength"),
        (generate(inputs, "--identity-guidance", "-1"), "--identity-guidance"),
        (generate(inputs, "--identity-steps", "9:2"), "--identity-steps"),
        (generate(inputs, "--cache", "warp:1"), "--cache"),
        (generate(inputs, "--offload", "gpu"), "--offload"),
        (generate(inputs, "--weights", "int4"), "--weights"),
        (generate(inputs, "--t5-weights", "gguf"), "--t5-weights"),
        (generate(inputs, "--transformer-file", str(inputs / "none.gguf")), "--transformer-file"),
        (generate(inputs, "--cache", "magcache", "--mag-ratios", str(inputs / "none.json")), "--mag-ratios"),
        (generate(inputs, "--cache", "magcache", "--mag-ratios", str(inputs / "a_file")), "--mag-ratios"),
        (generate(inputs, "--record-mag-ratios", str(inputs)), "--record-mag-ratios"),
        (["bench", "--config", "tiny", "--json", str(inputs / "a_file")], "--json"),
        (["bench", "--config", "tiny", "--json", str(inputs / "b.json"), "--weights", "int4"], "--weights"),
        (["convert", "--model", str(tiny_model_dir()), "--to", "int4", "--out", str(inputs / "c.gguf")], "int4"),
        (["convert", "--model", str(tiny_model_dir()), "--to", "fp8", "--out", str(inputs / "a_file")], "--out"),
        (["export-native", str(tiny_model_dir()), str(inputs / "a_file")], "OUT"),
        (["export-native", str(inputs / "none"), str(inputs / "n.safetensors")], "none"),
    ]
    return cases


def test_every_invalid_flag_value_exits_2_with_one_line_naming_it(inputs, capsys):
    failures = []
    for argv, named in invalid_flag_cases(inputs):
        code = main(argv)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        if code != 2 or len(lines) != 1 or "Traceback" in err or named not in lines[0]:
            failures.append(f"{argv[0]} {named}: exit {code}, stderr {err!r}")
    assert failures == [] and list((inputs / "out").iterdir()) == []


# ---- the library's own errors, with the path --------------------------------------------

def test_an_output_that_is_a_folder_is_refused(tmp_path):
    from echovideo_core.paths import check_output_file

    with pytest.raises(OutputPathError, match="is a folder") as caught:
        check_output_file(tmp_path, "--out")
    assert caught.value.path == tmp_path


def test_an_output_in_a_missing_folder_is_refused_unless_parents_may_be_created(tmp_path):
    from echovideo_core.paths import check_output_file

    with pytest.raises(OutputPathError, match="does not exist; create it first"):
        check_output_file(tmp_path / "a" / "b.mp4")
    assert check_output_file(tmp_path / "a" / "b.mp4", create_parents=True) == tmp_path / "a" / "b.mp4"
    assert not (tmp_path / "a").exists()  # a check creates nothing


def test_an_output_needing_more_room_than_the_disk_has_is_refused(tmp_path):
    from echovideo_core.paths import check_output_file

    with pytest.raises(NotEnoughSpaceError, match=f"needs about .* but {tmp_path} has .* free"):
        check_output_file(tmp_path / "video.mp4", "--out", expected_bytes=2**62)


def test_the_write_check_leaves_nothing_behind(tmp_path):
    from echovideo_core.paths import check_writable_folder

    check_writable_folder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_disk_error_inside_an_atomic_write_names_the_target(tmp_path):
    from echovideo_core.atomic import atomic_path

    with pytest.raises(OutputPathError, match=f"cannot write {tmp_path / 'video.mp4'}: No space left on device"):
        with atomic_path(tmp_path / "video.mp4") as tmp:
            tmp.write_bytes(b"partial")
            with open("/dev/full", "wb") as full:
                full.write(b"x" * 65536)
    assert list(tmp_path.iterdir()) == []


def test_missing_inputs_are_file_not_found_and_library_errors(tmp_path):
    from echovideo_core.face.image import load_rgb

    with pytest.raises(MissingInputError, match="nope.png: no such file") as caught:
        load_rgb(tmp_path / "nope.png")
    assert isinstance(caught.value, FileNotFoundError) and caught.value.path == tmp_path / "nope.png"


@pytest.mark.parametrize("content, message", [(b"garbage", "is not a .npy array file"),
                                              (None, "must have shape"), ("strings", "must hold real numbers")])
def test_an_arcface_file_that_is_not_512_numbers_is_an_input_file_error(tmp_path, content, message):
    from echovideo_core.face_features import read_arcface_file

    path = tmp_path / "a.npy"
    if content is None:
        np.save(path, np.zeros(3, np.float32))
    elif content == "strings":
        np.save(path, np.array(["x"] * 512))
    else:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        read_arcface_file(path, "--arcface")


def test_a_video_that_cannot_be_decoded_is_an_input_file_error(tmp_path):
    from echovideo_core.io import read_video

    (tmp_path / "v.mp4").write_bytes(b"not a video")
    with pytest.raises(InputFileError, match="v.mp4 is not a readable video"):
        read_video(tmp_path / "v.mp4")


def test_a_manifest_line_that_is_not_json_names_file_and_line(tmp_path):
    from echovideo_core.training.prepare import read_manifest

    (tmp_path / "c.jsonl").write_text('{"video": "a.mp4", "caption": "x"}\nnot json\n')
    with pytest.raises(InputFileError, match=r"c.jsonl:2: expected a JSON object"):
        read_manifest(tmp_path / "c.jsonl")


def test_every_library_error_is_an_echovideo_error():
    for error in (MissingInputError, InputFileError, OutputPathError, OutputExistsError, NotEnoughSpaceError):
        assert issubclass(error, EchoVideoError)
