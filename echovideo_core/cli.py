"""The `echovideo` command line (also `python -m echovideo_core`).

Each subcommand lives in its own module under `echovideo_core.commands` and exposes
`register(subparsers)`. Modules are imported one by one so that a missing optional
dependency (say, peft for training) disables only the subcommands that need it.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

logger = logging.getLogger(__name__)

# Order here is the order `echovideo --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "echovideo_core.commands.generate",
    "echovideo_core.commands.demo",
    "echovideo_core.commands.face",
    "echovideo_core.commands.eval",
    "echovideo_core.commands.convert",
    "echovideo_core.commands.bench",
    "echovideo_core.commands.tiny_model",
    "echovideo_core.commands.tiny_kit",
    "echovideo_core.commands.prepare_data",
    "echovideo_core.commands.train",
    "echovideo_core.commands.export_native",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="echovideo",
        description="EchoVideo: one face photo + a prompt -> a video of that person.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("echovideo_core.commands"):
                continue  # subcommand not written yet
            logger.warning("`%s` is unavailable: %s", name.rsplit(".", 1)[-1], err)
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(  # the CLI is an application: configuring logging is its job
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
