"""`echovideo generate --parallel` under torchrun on CPU processes (gloo): rank 0 writes the
latents, and they are the one-process latents (CFG-parallel: bit-identical to one process
with sequential branches, since each rank runs a branch as a batch of one; against batched
branches, and for Ulysses, float32 rounding: measured ~2.4e-6 here)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from echovideo_core.cli import main
from pipeline_kit import tiny_model_dir, write_identity_files

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
FLOAT32_ROUNDING = 1e-5
TIMEOUT = 400


@pytest.fixture(scope="module")
def identity_files(tmp_path_factory):
    return write_identity_files(tmp_path_factory.mktemp("identity"))


def generate_args(identity_files, out_dir, name, *extra) -> list[str]:
    image, arcface = identity_files
    return ["generate", "--model", str(tiny_model_dir()), "--identity-image", str(image), "--arcface", str(arcface),
            "--prompt", "a person smiles", "--out", str(out_dir / f"{name}.mp4"), "--size", "64x96", "--frames", "9",
            "--steps", "3", "--save-latents", str(out_dir / f"{name}.npy"), *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes: int, args: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
               "--master-port", str(_free_port()), "-m", "echovideo_core", *args]
    try:
        done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as err:  # pytorch#75097-style hangs: say where it stood
        tail = err.stderr or b""
        pytest.fail(f"{processes}-process run did not end in {TIMEOUT} s; stderr tail:\n"
                    f"{(tail.decode(errors='replace') if isinstance(tail, bytes) else tail)[-4000:]}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def one_process(identity_files, tmp_path_factory):
    """Latents of the plain run and of the sequential-branch run, in this process."""
    folder = tmp_path_factory.mktemp("one")
    assert main(generate_args(identity_files, folder, "batched")) == 0
    assert main(generate_args(identity_files, folder, "sequential", "--guidance-branches", "sequential")) == 0
    return np.load(folder / "batched.npy"), np.load(folder / "sequential.npy")


def test_cfg_parallel_on_two_processes_gives_the_one_process_latents(identity_files, one_process, tmp_path):
    done = torchrun(2, generate_args(identity_files, tmp_path, "cfg", "--parallel", "cfg"))
    assert done.stdout.count("wrote ") == 1  # rank 0 only
    latents = np.load(tmp_path / "cfg.npy")
    assert np.array_equal(latents, one_process[1])
    assert np.abs(latents - one_process[0]).max() <= FLOAT32_ROUNDING


def test_ulysses_on_two_processes_gives_the_one_process_latents_to_rounding(identity_files, one_process, tmp_path):
    torchrun(2, generate_args(identity_files, tmp_path, "ulysses", "--parallel", "ulysses"))
    assert np.abs(np.load(tmp_path / "ulysses.npy") - one_process[0]).max() <= FLOAT32_ROUNDING


@pytest.mark.skipif(os.environ.get("ECHOVIDEO_TEST_4_PROCESSES") != "1",
                    reason="4 processes on CI's 2 cores take ~45 s; set ECHOVIDEO_TEST_4_PROCESSES=1 to run")
def test_cfg_plus_ulysses_on_four_processes_gives_the_one_process_latents_to_rounding(identity_files, one_process,
                                                                                      tmp_path):
    torchrun(4, generate_args(identity_files, tmp_path, "both", "--parallel", "cfg+ulysses"))
    assert np.abs(np.load(tmp_path / "both.npy") - one_process[0]).max() <= FLOAT32_ROUNDING


def test_parallel_without_torchrun_is_one_line_saying_how_to_launch(identity_files, tmp_path, capsys):
    assert main(generate_args(identity_files, tmp_path, "x", "--parallel", "cfg")) == 2
    assert "torchrun --nproc-per-node" in capsys.readouterr().err and not (tmp_path / "x.npy").exists()


def test_magcache_without_ratios_stops_before_loading(identity_files, tmp_path, capsys):
    assert main(generate_args(identity_files, tmp_path, "x", "--cache", "magcache:0.1")) == 2
    assert "needs magnitude ratios calibrated" in capsys.readouterr().err
