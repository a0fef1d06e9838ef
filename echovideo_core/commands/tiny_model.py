"""`echovideo tiny-model DIR`: write the tiny random-weight model (released folder layout).

DIR must be new or empty; with --overwrite only the tiny model's own files are replaced
(every other file in DIR stays), and a folder holding a real model is refused even then.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from echovideo_core.commands import check_argument
from echovideo_core.paths import check_output_folder
from echovideo_core.validation import check_seed


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tiny-model", help="write a tiny random-weight model for tests and demos (outputs are noise)",
        description=__doc__,
    )
    parser.add_argument("folder", type=Path, help="where to write it (created; must be new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder, replacing only the tiny model's own files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_argument("--seed", check_seed, args.seed)
    check_output_folder(args.folder, "FOLDER", must_be_empty=True, overwrite=args.overwrite)  # before any import
    from echovideo_core.tiny import check_tiny_model_target, write_tiny_model

    check_tiny_model_target(args.folder, overwrite=args.overwrite, argument="FOLDER")
    folder = write_tiny_model(args.folder, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote tiny EchoVideo model (random weights, seed {args.seed}) to {folder}")
    return 0
