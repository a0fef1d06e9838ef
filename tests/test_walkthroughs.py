"""The README's tiny walk-throughs run as written: the command-line block (the tiny kit, a
face prepared from the example photo, a generation) and then the training block (synthetic
clips, prepare-data, stage 1 and stage 2 in mode full from the shipped configs)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from echovideo_core.cli import main
from echovideo_core.io import read_video

REPO = Path(__file__).resolve().parents[1]


def readme_block(name: str) -> list[list[str]]:
    """The commands of a `<!-- walkthrough:NAME -->` block, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    block = re.search(rf"<!-- walkthrough:{name} -->\n```bash\n(.*?)```\n<!-- /walkthrough -->", text, re.S).group(1)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def run_as_written(commands: list[list[str]], capsys) -> list[str]:
    """Each `echovideo ...` line through the CLI's main(); returns each command's stdout."""
    outputs = []
    for argv in commands:
        assert argv[0] == "echovideo", argv
        code = main(argv[1:])
        captured = capsys.readouterr()
        assert code == 0, f"{shlex.join(argv)} -> {code}: {captured.err[-2000:]}"
        outputs.append((captured.out, captured.err))
    return outputs


def test_the_readme_walkthroughs_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORLD_SIZE", raising=False)  # a launched worker's train command would os._exit
    for shipped in ("configs", "workflows"):
        (tmp_path / shipped).symlink_to(REPO / shipped)
    run_as_written(readme_block("tiny-generate"), capsys)
    assert read_video(tmp_path / "tiny" / "tiny.mp4").shape == (9, 64, 64, 3)

    outputs = run_as_written(readme_block("tiny-training"), capsys)
    prepare_out, prepare_err = outputs[1]
    assert prepare_out.count("prepared 2 clips") == 1 and "clips: 100%" in prepare_err  # one summary, a progress bar
    for (out, err), stage in zip(outputs[2:], ("stage1", "stage2")):
        assert out.count("trained steps 1..10") == 1 and "training: 100%" in err
        assert (tmp_path / "tiny" / "runs" / stage / "final" / "transformer" / "config.json").is_file()
    saved = [yaml.safe_load((tmp_path / "tiny" / "runs" / s / "train_config.yaml").read_text())["seed"]
             for s in ("stage1", "stage2")]
    assert saved == [0, 1]  # stage 2 draws a new random stream by default


def test_the_command_line_runs_from_the_pack_folder_without_installed_packages():
    """After the README's ComfyUI install nothing is pip-installed: `python -m echovideo_core`
    from the pack's folder works (here even without site-packages, for the argument parser)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-S", "-m", "echovideo_core", "tiny-kit", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--comfy-models DIR" in done.stdout
