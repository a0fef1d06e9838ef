"""The speed flags of `echovideo generate` and `echovideo bench`, declared once.

`add_speed_options(parser)` adds `--cache`, `--compile`, `--attention`, `--guidance-branches`
and `--parallel`; `add_mag_ratio_options(parser)` MagCache's `--mag-ratios` and
`--record-mag-ratios` (generate only); `speed_options(args)` turns the parsed values into one
`SpeedOptions` (a mistake becomes argparse's one-line usage error, before any model loads).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, TypeVar

from echovideo_core.acceleration.options import (ATTENTION_BACKENDS, GUIDANCE_BRANCHES, PARALLEL_MODES,
                                                 SpeedOptionError, SpeedOptions, parse_attention, parse_cache,
                                                 parse_guidance_branches, parse_parallel)

T = TypeVar("T")


def _argparse_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return parse(text)
        except SpeedOptionError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = parse.__name__.removeprefix("parse_")
    return convert


def add_speed_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed")
    group.add_argument("--cache", type=_argparse_type(parse_cache), default=parse_cache("none"),
                       help="step cache: none (default), fbc:T (first-block cache), magcache:T (needs calibrated "
                            "ratios), teacache:T; T omitted = the cache's default threshold, 0 = exact")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile each transformer block (first step pays the compilation)")
    group.add_argument("--attention", type=_argparse_type(parse_attention), default="sdpa",
                       help=f"attention kernel: {' / '.join(ATTENTION_BACKENDS)} (sage and flash: CUDA, when installed)")
    group.add_argument("--guidance-branches", type=_argparse_type(parse_guidance_branches), default="batched",
                       help=f"{' / '.join(GUIDANCE_BRANCHES)}: run the two CFG branches as one batch (default) or one "
                            "after the other (less memory, same numbers to float32 rounding)")
    group.add_argument("--parallel", type=_argparse_type(parse_parallel), default="none",
                       help=f"{' / '.join(PARALLEL_MODES)}: split the run over the processes of "
                            "`torchrun --nproc-per-node N` (rank 0 writes the outputs)")


def add_mag_ratio_options(parser: argparse.ArgumentParser) -> None:
    """MagCache's calibration file, in and out (mag_ratios.py); for generate, not bench (which
    calibrates on its own baseline run)."""
    group = parser.add_argument_group("MagCache calibration")
    group.add_argument("--mag-ratios", type=Path, default=None, metavar="FILE",
                       help="the ratios --cache magcache needs: a JSON file written by --record-mag-ratios or by "
                            "`echovideo bench --cache magcache --json`")
    group.add_argument("--record-mag-ratios", type=Path, default=None, metavar="FILE",
                       help="measure MagCache's ratios during this (uncached, batched) run and write them here")


def speed_options(args: argparse.Namespace) -> SpeedOptions:
    return SpeedOptions(cache=args.cache, compile=args.compile, attention=args.attention,
                        guidance_branches=args.guidance_branches, parallel=args.parallel)
