"""MagCache from the command line: an uncached `generate --record-mag-ratios F` writes the
ratios, `generate --cache magcache --mag-ratios F` (or a bench JSON) uses them; a mistake is
one line before anything loads."""
from __future__ import annotations

import json
import shutil

import pytest

from acceleration_fixtures import tiny_dit
from echovideo_core.acceleration.mag_ratios import read_mag_ratios
from echovideo_core.cli import main
from echovideo_core.errors import InputFileError
from pipeline_kit import tiny_model_dir, write_identity_files

STEPS = 4


@pytest.fixture(scope="module")
def two_block_model(tmp_path_factory):
    """The tiny model with a two-block DiT (MagCache keeps the first block and caches the rest)."""
    folder = tmp_path_factory.mktemp("model") / "tiny2"
    shutil.copytree(tiny_model_dir(), folder)
    shutil.rmtree(folder / "transformer")
    tiny_dit(2).save_pretrained(folder / "transformer")
    return folder


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return write_identity_files(tmp_path_factory.mktemp("identity"))


def generate(model, identity, out, *extra) -> int:
    return main(["generate", "--model", str(model), "--identity-image", str(identity[0]), "--arcface",
                 str(identity[1]), "--prompt", "a person", "--out", str(out), "--size", "32x48",
                 "--frames", "9", "--steps", str(STEPS), *extra])


@pytest.fixture(scope="module")
def recorded(two_block_model, identity, tmp_path_factory):
    folder = tmp_path_factory.mktemp("recorded")
    assert generate(two_block_model, identity, folder / "a.mp4", "--record-mag-ratios", str(folder / "r.json")) == 0
    return folder / "r.json"


def test_an_uncached_run_records_one_ratio_per_step(recorded):
    data = json.loads(recorded.read_text())
    assert data["steps"] == STEPS and len(data["mag_ratios"]) == STEPS and data["mag_ratios"][0] == 1.0


def test_the_recorded_ratios_let_magcache_skip_blocks(two_block_model, identity, recorded, tmp_path, capsys):
    assert generate(two_block_model, identity, tmp_path / "b.mp4", "--cache", "magcache:10", "--mag-ratios",
                    str(recorded)) == 0
    evaluations = int(capsys.readouterr().out.split(" block evaluations")[0].rsplit(" ", 1)[-1])
    assert evaluations < 2 * 2 * STEPS


def test_a_bench_json_is_a_ratio_file_too(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "9", "--steps", "3", "--cache",
                 "magcache", "--json", str(out)]) == 0
    assert len(read_mag_ratios(out)) == 3


def test_mag_ratios_without_magcache_is_one_line(two_block_model, identity, recorded, tmp_path, capsys):
    assert generate(two_block_model, identity, tmp_path / "c.mp4", "--mag-ratios", str(recorded)) == 2
    assert "--mag-ratios feeds --cache magcache" in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()


def test_recording_refuses_a_cached_run(two_block_model, identity, tmp_path, capsys):
    assert generate(two_block_model, identity, tmp_path / "d.mp4", "--cache", "fbc",
                    "--record-mag-ratios", str(tmp_path / "r.json")) == 2
    assert "--record-mag-ratios" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["not json", "{}", '{"mag_ratios": []}', '{"mag_ratios": [1, "a"]}',
                                  '{"mag_ratios": [1, -2]}'])
def test_a_bad_ratio_file_names_itself(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputFileError, match="bad.json"):
        read_mag_ratios(path)
