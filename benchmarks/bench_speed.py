"""Speed options of issue 13 on the CPU "medium" DiT (or any size on a GPU): time per step,
speedup against the baseline run in the same process, latent difference, block evaluations.

The medium configuration has the real block width (48 heads x 64, 512-wide time embedding,
4096-wide text) and 4 layers, random weights, 64x96 pixels x 9 frames, 10 steps, CFG on.
Each `--option=...` is a set of `echovideo generate` speed flags in one string (written with
`=`, since it starts with `--`). Prints one JSON object per option (the baseline first); no
test times anything.

    python benchmarks/bench_speed.py --threads 1 \
        --option="--cache fbc" --option="--cache teacache" --option="--cache magcache" \
        --option="--guidance-branches sequential" --option="--compile"
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex

import torch

from echovideo_core.acceleration.bench import MEDIUM_SIZE, bench_speed_options, medium_transformer
from echovideo_core.testing.synthetic import synthetic_inputs
from echovideo_core.acceleration.cli_options import add_speed_options, speed_options
from echovideo_core.tiny import SCHEDULER_CONFIG


def parse_option(text: str):
    parser = argparse.ArgumentParser(prog="--option", add_help=False)
    add_speed_options(parser)
    return speed_options(parser.parse_args(shlex.split(text)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--option", action="append", default=[], help="speed flags of one run (repeatable)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=MEDIUM_SIZE["steps"])
    parser.add_argument("--height", type=int, default=MEDIUM_SIZE["height"])
    parser.add_argument("--width", type=int, default=MEDIUM_SIZE["width"])
    parser.add_argument("--frames", type=int, default=MEDIUM_SIZE["num_frames"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    options = [parse_option(text) for text in args.option]
    model = medium_transformer(num_layers=args.layers).to(args.device, getattr(torch, args.dtype))
    inputs = synthetic_inputs(model.config, device=model.device, height=args.height, width=args.width, num_frames=args.frames, steps=args.steps)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "device": args.device, "dtype": args.dtype, "layers": args.layers,
                      "size": f"{args.height}x{args.width}x{args.frames}", "steps": args.steps}), flush=True)
    for result in bench_speed_options(model, SCHEDULER_CONFIG, inputs, options):
        print(json.dumps(result.as_json()), flush=True)


if __name__ == "__main__":
    main()
