"""Peak memory of the EchoVideo DiT in each weights format: one fresh process per format.

Each run builds the 5.6B DiT (released layout, random weights) in one format, or loads a
weights file, then runs one denoising step at 64x64, 5 frames, and reports the peak
resident memory of the whole process (VmHWM: imports, weights, activations, everything),
the peak after loading, the seconds to load and to run the step. Runs happen one after
another (never two big processes at once); the bf16 run is the baseline of the ratios.

    python benchmarks/weights_memory.py --runs bf16 fp8 int8 gguf-q4_k-file --json results.json
    python benchmarks/weights_memory.py --one fp8            # a single run, JSON on stdout

`<target>-file` (gguf-q4_k-file, fp8-file, ...) first writes the random weights as such a file
(`--work DIR`) in a process of its own (its peak is reported too: the converter streams),
then loads that file as stored.
One step without CFG (batch 1): the memory is the weights', a second CFG branch adds a few
MB of activations at this size and doubles the time. bf16 matmuls are slow on CPUs without
bf16 units, so a run takes tens of minutes there; figures in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _one(run: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from echovideo_core.testing.full_size import FULL_TRANSFORMER, MEDIUM_TRANSFORMER, RandomWeights
    from echovideo_core.testing.synthetic import final_latents, synthetic_inputs
    from echovideo_core.weights.memory import current_rss_bytes, peak_rss_bytes
    from echovideo_core.weights.transformer import load_transformer_in_format, transformer_from_source

    config = FULL_TRANSFORMER if args.config == "full" else MEDIUM_TRANSFORMER
    imported = current_rss_bytes()
    start = time.perf_counter()
    if run.endswith("-file"):
        model = load_transformer_in_format(_file_path(args, run[: -len("-file")]), None)  # as stored
    else:
        model = transformer_from_source(RandomWeights(config, seed=0), run)
    loaded = time.perf_counter()
    peak_loaded = peak_rss_bytes()
    height, width = args.size
    inputs = synthetic_inputs(dict(model.config), height=height, width=width, num_frames=args.frames, steps=1, cfg=False)
    latents = final_latents(model, inputs)
    done = time.perf_counter()
    return {"run": run, "config": args.config, "size": f"{height}x{width}", "frames": args.frames, "steps": 1,
            "threads": args.threads, "rss_after_imports_bytes": imported, "peak_after_load_bytes": peak_loaded,
            "peak_memory_bytes": peak_rss_bytes(), "load_seconds": loaded - start, "step_seconds": done - loaded,
            "latents_finite": bool(torch.isfinite(latents).all())}


def _file_path(args: argparse.Namespace, target: str) -> Path:
    suffix = ".gguf" if target.startswith("gguf") else ".safetensors"
    return Path(args.work) / f"echovideo-{args.config}-random-{target}{suffix}"


def _convert(target: str, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from echovideo_core.testing.full_size import FULL_TRANSFORMER, MEDIUM_TRANSFORMER, RandomWeights
    from echovideo_core.weights.convert import convert_source
    from echovideo_core.weights.formats import weights_format
    from echovideo_core.weights.memory import peak_rss_bytes

    config = FULL_TRANSFORMER if args.config == "full" else MEDIUM_TRANSFORMER
    out = _file_path(args, target)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = convert_source(RandomWeights(config, seed=0), weights_format(target), out)
    return {"run": f"convert random -> {target}", "config": args.config, "file_bytes": result.bytes,
            "peak_memory_bytes": peak_rss_bytes(), "seconds": time.perf_counter() - start}


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory, "torch": torch.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "python": platform.python_version()}


def _child(mode: str, run: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, mode, run, "--config", args.config, "--threads", str(args.threads),
               "--work", args.work, "--size", f"{args.size[0]}x{args.size[1]}", "--frames", str(args.frames)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"run": run, "error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", default=["bf16", "fp8", "int8", "gguf-q4_k-file"])
    parser.add_argument("--one", default=None, help="run one format in this process, print its JSON")
    parser.add_argument("--convert", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=("full", "medium"), default="full")
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(64, 64))
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", default="/tmp/echovideo-weights-memory", help="where the .gguf file is written")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args)))
        return
    if args.convert:
        print(json.dumps(_convert(args.convert, args)))
        return
    results = {"machine": machine(), "runs": []}
    for run in args.runs:
        target = run[: -len("-file")]
        if run.endswith("-file") and not _file_path(args, target).exists():
            results["runs"].append(_child("--convert", target, args))
            print(json.dumps(results["runs"][-1]), flush=True)
        results["runs"].append(_child("--one", run, args))
        print(json.dumps(results["runs"][-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    base = next((r for r in results["runs"] if r.get("run") == "bf16" and "peak_memory_bytes" in r), None)
    for r in results["runs"]:
        if base and "peak_memory_bytes" in r and "load_seconds" in r:
            r["memory_ratio_vs_bf16"] = r["peak_memory_bytes"] / base["peak_memory_bytes"]
        print(f"{r.get('run'):28s} peak {r.get('peak_memory_bytes', 0) / 1e9:6.2f} GB  ratio {r.get('memory_ratio_vs_bf16', float('nan')):.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
