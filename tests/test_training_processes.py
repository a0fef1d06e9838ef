"""The trainer as separate processes: killed and resumed, and on 2 processes (gloo, CPU)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from echovideo_core.training.checkpoint import list_checkpoints
from echovideo_core.training.config import config_from_dict
from echovideo_core.training.trainer import read_metrics, train
from training_fixtures import train_config, one_thread  # noqa: F401 (one_thread: autouse fixture)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "echovideo_core", "train", "--config", str(config), *extra]


def wait_for_step(proc: subprocess.Popen, output_dir: Path, step: int, timeout: float = 240) -> int:
    """Poll the metrics file until it reaches `step`; returns the last step seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = read_metrics(output_dir)
        if records and records[-1]["step"] >= step:
            return records[-1]["step"]
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited (rc {proc.returncode}) before step {step}")
        time.sleep(0.01)
    raise AssertionError(f"trainer did not reach step {step} in {timeout} s")


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tmp_path):
    steps = 60
    settings = dict(max_steps=steps, stage={"stage": 2, "p_drop_face_latent": 0.5, "p_drop_text": 0.2, "p_drop_face": 0.2},
                    trainable={"mode": "iitf_lora"}, checkpoint={"every": 5, "keep_last": 3})
    killed_dir = tmp_path / "killed"
    config = write_config(tmp_path / "killed.yaml", train_config(killed_dir, **settings))
    proc = subprocess.Popen(train_command(config), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = wait_for_step(proc, killed_dir, 12)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the trainer finished before it could be killed"
    resumed_from = list_checkpoints(killed_dir)[-1][0]
    assert 10 <= resumed_from < steps and seen < steps

    done = subprocess.run(train_command(config, "--resume", "latest"), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"trained steps {resumed_from + 1}..{steps}" in done.stdout

    reference = train(config_from_dict(train_config(tmp_path / "uninterrupted", **settings)))
    resumed = [r["loss"] for r in read_metrics(killed_dir)]
    assert [r["step"] for r in read_metrics(killed_dir)] == list(range(1, steps + 1))
    np.testing.assert_allclose(resumed, reference.losses, rtol=1e-5, atol=1e-7)
    exported = load_file(str(killed_dir / "final" / "lora.safetensors"))
    expected = load_file(str(tmp_path / "uninterrupted" / "final" / "lora.safetensors"))
    for key, value in expected.items():
        torch.testing.assert_close(exported[key], value, rtol=1e-5, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two(config: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "echovideo_core", "train", "--config", str(config),
               *extra]
    try:
        done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired as err:  # say where it stood, not just that it stopped
        tail = (err.stderr or b"")[-4000:]
        pytest.fail(f"2-process run did not end in 400 s; stderr tail:\n{tail.decode(errors='replace') if isinstance(tail, bytes) else tail}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_two_processes_match_one_process_at_equal_global_batch(tmp_path):
    settings = dict(max_steps=6, stage={"stage": 2, "p_drop_face_latent": 0.5, "p_drop_text": 0.2, "p_drop_face": 0.2},
                    trainable={"mode": "iitf_lora"}, checkpoint={"every": 3})
    two_dir = tmp_path / "two"
    config = write_config(tmp_path / "two.yaml", train_config(two_dir, data={"batch_size": 1}, **settings))
    launch_two(config, "--max-steps", "3")  # a finished 3-step run ...
    resumed = launch_two(config, "--resume", "latest")  # ... extended to 6 steps on 2 processes
    assert resumed.stdout.count("trained steps 4..6") == 1  # the summary comes from the main process only
    two = read_metrics(two_dir)
    assert [r["samples"] for r in two] == [2] * 6  # both processes contributed to every step

    one = train(config_from_dict(train_config(tmp_path / "one", data={"batch_size": 2}, **settings)))
    np.testing.assert_allclose([r["loss"] for r in two], one.losses, rtol=1e-5, atol=1e-7)
    exported = load_file(str(two_dir / "final" / "lora.safetensors"))
    expected = load_file(str(tmp_path / "one" / "final" / "lora.safetensors"))
    for key, value in expected.items():  # Adam's normalised steps amplify float-sum order to ~1e-6
        torch.testing.assert_close(exported[key], value, rtol=1e-4, atol=1e-5)
    assert (two_dir / "final-00000003" / "lora.safetensors").is_file()  # the 3-step export is kept


def test_a_hanging_process_group_teardown_ends_the_worker_after_the_deadline():
    """pytorch#75097: destroy_process_group can hang; a finished worker must still exit."""
    script = ("import time\n"
              "from echovideo_core.distributed import exit_if_teardown_hangs\n"
              "with exit_if_teardown_hangs(True, seconds=0.5):\n"
              "    time.sleep(60)  # stands in for a teardown that never returns\n"
              "raise SystemExit(3)\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and time.monotonic() - started < 30
    assert "teardown did not finish" in done.stderr


def test_single_process_teardown_is_not_watched():
    """In a subprocess: if the watchdog fired here it would os._exit(0) and end pytest green."""
    script = ("import time\n"
              "from echovideo_core.distributed import exit_if_teardown_hangs\n"
              "with exit_if_teardown_hangs(False, seconds=0.01):\n"
              "    time.sleep(0.5)  # still here: nothing was armed\n"
              "raise SystemExit(3)\n")
    done = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and "teardown did not finish" not in done.stderr
