"""`echovideo synthetic-clips --out DIR`: a few synthetic clips and their captions.jsonl.

For the tiny training walk-through (README): short videos of a colour gradient with a
magenta "face" marker that the tiny kit's face detector finds, ready for `echovideo
prepare-data --videos DIR --captions DIR/captions.jsonl`. Existing files are kept unless
--overwrite (and then only the clips and the manifest this command writes are replaced).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from echovideo_core.commands import check_argument
from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_output_folder
from echovideo_core.validation import check_seed

MAX_CLIPS = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("synthetic-clips", help="write a few synthetic training clips (tiny walk-through)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the clips and captions.jsonl (created)")
    parser.add_argument("--count", type=int, default=4, help=f"number of clips, 1 to {MAX_CLIPS} (default 4)")
    parser.add_argument("--frames", type=int, default=20, help="frames per clip, 1 to 1000 (default 20)")
    parser.add_argument("--size", type=int, default=96, help="clip width = height in pixels, 96 to 1024, even (default 96)")
    parser.add_argument("--seed", type=int, default=0, help="colour seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace clips and the manifest if they exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for flag, value, low, high in (("--count", args.count, 1, MAX_CLIPS), ("--frames", args.frames, 1, 1000),
                                   ("--size", args.size, 96, 1024)):
        if not low <= value <= high:
            raise InvalidInputError(f"{flag} must be from {low} to {high}, got {value}")
    if args.size % 2:
        raise InvalidInputError(f"--size must be even (H.264), got {args.size}")
    check_argument("--seed", check_seed, args.seed)
    check_output_folder(args.out, "--out", expected_bytes=args.count * args.frames * args.size**2 * 3)

    from echovideo_core.atomic import staged_files
    from echovideo_core.testing.synthetic_clips import write_synthetic_clips

    with staged_files(args.out, overwrite=args.overwrite) as stage:
        write_synthetic_clips(stage, args.count, seed=args.seed, frames=args.frames, size=args.size)
    print(f"wrote {args.count} synthetic clips ({args.frames} frames, {args.size}x{args.size}) and "
          f"{args.out / 'captions.jsonl'}")
    return 0
