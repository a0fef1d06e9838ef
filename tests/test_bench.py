"""`echovideo bench`: the JSON interface, exact modes measured as exact, approximate ones
reporting their difference, the baseline in the same process (no timing asserts)."""
from __future__ import annotations

import json

import pytest

from echovideo_core.cli import main

KEYS = {"config", "size", "frames", "steps", "device", "weights", "offload", "stages", "step_seconds",
        "peak_memory_bytes", "baseline", "speedup", "memory_ratio", "max_abs_latent_diff_vs_baseline",
        "block_evaluations"}
STAGES = {"text", "face", "fuse", "denoise", "decode"}


def bench(tmp_path, *extra) -> dict | list:
    out = tmp_path / "bench.json"
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "9", "--steps", "3", "--json", str(out),
                 *extra]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory):
    return bench(tmp_path_factory.mktemp("bench"), "--offload", "blocks:1")


def test_the_json_has_every_key_as_numbers(offloaded):
    assert KEYS <= set(offloaded) and set(offloaded["stages"]) == STAGES
    assert all(isinstance(v, float) for v in offloaded["stages"].values())
    assert len(offloaded["step_seconds"]) == 3 and isinstance(offloaded["peak_memory_bytes"], int)
    assert set(offloaded["baseline"]) == {"stages", "step_seconds", "peak_memory_bytes", "block_evaluations"}
    assert isinstance(offloaded["speedup"], float) and isinstance(offloaded["memory_ratio"], float)


def test_an_exact_mode_measures_zero_difference_to_the_baseline(offloaded):
    assert offloaded["max_abs_latent_diff_vs_baseline"] == 0.0


def test_block_evaluations_count_blocks_times_branches_times_steps(offloaded):
    assert offloaded["block_evaluations"] == offloaded["baseline"]["block_evaluations"] == 2 * 2 * 3  # the bench's tiny: 2 blocks


def test_a_low_bit_format_reports_its_difference(tmp_path):
    result = bench(tmp_path, "--weights", "fp8")
    assert 0.0 < result["max_abs_latent_diff_vs_baseline"] < 0.1 and result["weights"] == "fp8"


def test_without_a_baseline_the_comparisons_are_null(tmp_path):
    result = bench(tmp_path, "--no-baseline")
    assert result["baseline"] is None and result["max_abs_latent_diff_vs_baseline"] is None and result["speedup"] is None


def test_several_frame_counts_give_one_result_each(tmp_path):
    out = tmp_path / "growth.json"
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "1,9", "--steps", "1", "--no-baseline",
                 "--json", str(out)]) == 0
    assert [r["frames"] for r in json.loads(out.read_text())] == [1, 9]


def test_the_bench_never_replaces_a_result_without_overwrite(tmp_path):
    out = tmp_path / "bench.json"
    out.write_text("{}")
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "1", "--steps", "1", "--json", str(out)]) == 2
    assert out.read_text() == "{}"


def test_magcache_is_calibrated_on_the_baseline_and_skips_blocks(tmp_path):
    out = tmp_path / "mag.json"
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "9", "--steps", "6", "--cache",
                 "magcache:0.5", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["block_evaluations"] < result["baseline"]["block_evaluations"] == 2 * 2 * 6
    assert result["max_abs_latent_diff_vs_baseline"] > 0.0  # approximate: reported, not hidden


def test_a_run_on_a_converted_file_names_the_file_as_its_weights(tmp_path):
    from echovideo_core.weights.convert import convert_transformer
    from pipeline_kit import tiny_model_dir

    convert_transformer(tiny_model_dir() / "transformer", "gguf-q8_0", tmp_path / "dit.gguf")
    out = tmp_path / "file.json"
    assert main(["bench", "--config", "tiny", "--size", "32x32", "--frames", "1", "--steps", "1", "--no-baseline",
                 "--transformer-file", str(tmp_path / "dit.gguf"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["weights"] == "as stored in dit.gguf"


def test_the_command_line_shows_no_import_notices_of_torch_torchao_or_diffusers(tmp_path):
    """Installed torchao makes torch, torchao and diffusers log at import (kernels a CPU build
    cannot load, deprecations): noise that reads like an error to a user; --verbose shows it."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "echovideo_core", "bench", "--config", "tiny", "--size", "32x32",
                           "--frames", "1", "--steps", "1", "--no-baseline", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    ours = ("INFO echovideo_core", "baseline, ")  # our log lines and progress bars ("baseline, 1 frames: ...")
    notices = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith(ours)
               and "step/s]" not in line]
    assert notices == []
