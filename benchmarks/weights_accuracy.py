"""Latent error of each approximate weights format against the same bf16 weights (CPU, float32 compute).

    python benchmarks/weights_accuracy.py --config tiny
    python benchmarks/weights_accuracy.py --config medium --layers 1 --size 16x16 --frames 1 --steps 1 --no-cfg

Prints one line per format: largest |latent difference| and PSNR (dB) after the run; the
numbers behind the bounds in docs/weights.md and tests/test_weights_accuracy.py.
"""
from __future__ import annotations

import argparse
import json

import torch

from echovideo_core.testing.full_size import MEDIUM_TRANSFORMER, RandomWeights
from echovideo_core.tiny import TINY_TRANSFORMER
from echovideo_core.weights.accuracy import format_errors
from echovideo_core.weights.sources import StateDictSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=("tiny", "medium"), default="tiny")
    parser.add_argument("--layers", type=int, default=None, help="override the block count")
    parser.add_argument("--weights", nargs="*", default=["fp8", "int8", "gguf-q8_0", "gguf-q5_k", "gguf-q4_k"])
    parser.add_argument("--size", type=lambda s: tuple(int(v) for v in s.split("x")), default=(32, 32))
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--no-cfg", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = dict(TINY_TRANSFORMER if args.config == "tiny" else MEDIUM_TRANSFORMER)
    if args.layers:
        config["num_layers"] = args.layers
    random = RandomWeights(config, seed=args.seed)
    source = StateDictSource({k: random.read(k).data for k in random.shapes()}, random.config)  # drawn once
    errors = format_errors(source, args.weights, height=args.size[0], width=args.size[1], num_frames=args.frames,
                           steps=args.steps, cfg=not args.no_cfg, seed=args.seed)
    for error in errors:
        print(json.dumps({"config": args.config, "layers": config["num_layers"], **error.as_json()}))


if __name__ == "__main__":
    main()
