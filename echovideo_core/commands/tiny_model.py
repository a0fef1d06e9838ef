"""`echovideo tiny-model DIR`: write the tiny random-weight model (released folder layout)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tiny-model", help="write a tiny random-weight model for tests and demos (outputs are noise)",
        description=__doc__,
    )
    parser.add_argument("folder", type=Path, help="where to write it (created)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import transformers

    from echovideo_core.tiny import write_tiny_model

    transformers.utils.logging.disable_progress_bar()
    folder = write_tiny_model(args.folder, seed=args.seed)
    print(f"wrote tiny EchoVideo model (random weights, seed {args.seed}) to {folder}")
    return 0
