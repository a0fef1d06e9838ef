"""`echovideo train --config train.yaml [--resume latest]`: stage 1 / stage 2 training on accelerate.

Multi-GPU: `accelerate launch --config_file configs/accelerate/ddp.yaml -m echovideo_core train ...`.
A progress bar with the time left and the one summary line come from the main process only.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_input_file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train or fine-tune EchoVideo (IITF, IITF + LoRA, or full)",
                                   description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="training YAML (see configs/train.yaml)")
    parser.add_argument("--resume", default=None,
                        help="'latest' (newest checkpoint in output_dir, or a fresh start if none) or a checkpoint folder")
    parser.add_argument("--max-steps", type=int, default=None, help="override max_steps from the config")
    parser.set_defaults(run=run)


def is_main_process() -> bool:
    """Rank 0 of a launched run (accelerate / torchrun set RANK), or a plain process."""
    return int(os.environ.get("RANK", "0")) == 0


def run(args: argparse.Namespace) -> int:
    if args.max_steps is not None and args.max_steps < 1:
        raise InvalidInputError(f"--max-steps must be >= 1, got {args.max_steps}")
    check_input_file(args.config, "--config")

    from echovideo_core.training.config import load_config
    from echovideo_core.training.trainer import check_run_inputs, train

    cfg = load_config(args.config, {"max_steps": args.max_steps} if args.max_steps is not None else None)
    check_run_inputs(cfg, args.resume)
    result = train(cfg, resume=args.resume)
    if is_main_process():
        if result.losses:
            print(f"trained steps {result.first_step + 1}..{result.last_step}, last loss {result.losses[-1]:.5f}, "
                  f"output in {result.output_dir}")
        else:
            print(f"nothing to do: already at step {result.last_step} of {cfg.max_steps} ({result.output_dir})")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A launched worker whose work is saved leaves without interpreter teardown: gloo's
        # worker threads can otherwise hang or abort it there (pytorch/pytorch#75097).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
