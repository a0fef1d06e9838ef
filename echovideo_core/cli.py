"""The `echovideo` command line (also `python -m echovideo_core`).

Each subcommand lives in its own module under `echovideo_core.commands` and exposes
`register(subparsers)`. Modules are imported one by one so that a missing optional
dependency (say, peft for training) disables only the subcommands that need it. Command
modules import only light modules at the top (no torch, no diffusers), so that a wrong
argument is reported within a second, before anything heavy is imported or loaded.

One error boundary (`run_command`) for every command: a user's mistake (every
`EchoVideoError`: a bad value, a missing or unreadable file, a missing model, an output
that cannot be written; and disk problems such as a full or read-only disk) prints one line
naming the argument or file and what to do, and exits with 2; any other failure prints one
line and exits with 1. `echovideo --debug COMMAND ...` (or ECHOVIDEO_DEBUG=1) adds the
traceback. Argument-syntax errors are one line too (exit 2).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import Callable, Sequence

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
    "echovideo_core.commands.synthetic_clips",
    "echovideo_core.commands.prepare_data",
    "echovideo_core.commands.train",
    "echovideo_core.commands.export_native",
)
USER_ERROR, RUNTIME_FAILURE, INTERRUPTED = 2, 1, 130
# Named exactly: torch and diffusers reset the levels of their root loggers ("torch",
# "diffusers") when they are imported, after this is configured; their children keep ours.
IMPORT_NOTICE_LOGGERS = ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer")
DEBUG_ENV = "ECHOVIDEO_DEBUG"


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (usage + message is several lines) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USER_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="echovideo",
        description="EchoVideo: one face photo + a prompt -> a video of that person.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", dest="show_traceback", action="store_true",
                        help=f"show the traceback of a failure (also {DEBUG_ENV}=1); put it before the command")
    parser.add_argument("--threads", dest="torch_threads", type=int, default=None, metavar="N",
                        help="CPU threads for torch (default: torch's, one per core; tiny models run fastest with "
                             "1-4, many threads make them several times slower)")
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


def describe_failure(err: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) for an exception that reached the boundary."""
    from echovideo_core.errors import EchoVideoError
    from echovideo_core.paths import OS_ERROR_ADVICE, describe_os_error

    if isinstance(err, EchoVideoError):
        return USER_ERROR, " ".join(str(err).split())
    if isinstance(err, OSError) and err.errno in OS_ERROR_ADVICE:  # disk full, read-only, permission, ...
        return USER_ERROR, describe_os_error(err)
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        return RUNTIME_FAILURE, ("out of memory; try a smaller --size, fewer --frames, --dtype bf16, or another "
                                 "device")
    detail = " ".join(f"{type(err).__name__}: {err}".split())
    return RUNTIME_FAILURE, f"failed with {detail}"


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, *, name: str,
                show_traceback: bool = False) -> int:
    """The error boundary: run one command, turn any failure into one line and an exit status."""
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print(f"echovideo {name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # noqa: BLE001 - this is the boundary: nothing passes it as a traceback
        status, message = describe_failure(err)
        if show_traceback:
            traceback.print_exc()
        elif status == RUNTIME_FAILURE:
            message += f" (run `echovideo --debug {name} ...` for the traceback)"
        print(f"echovideo {name}: {message}", file=sys.stderr)
        return status


def configure_logging(verbose: bool) -> None:
    """The CLI is an application, so configuring logging is its job: our messages from INFO
    on, other libraries' from WARNING on, and the notices torch and torchao log when they
    are imported (optional kernels not found, deprecations) only with --verbose."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("echovideo_core").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        for name in IMPORT_NOTICE_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or an argument error already printed in one line
        return done.code if isinstance(done.code, int) else USER_ERROR
    configure_logging(args.verbose)
    if not getattr(args, "run", None):
        parser.print_help()
        return USER_ERROR
    if args.torch_threads is not None:
        if args.torch_threads < 1:
            print(f"echovideo: --threads must be >= 1, got {args.torch_threads}", file=sys.stderr)
            return USER_ERROR
        import torch

        torch.set_num_threads(args.torch_threads)
    show = args.show_traceback or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    return run_command(args.run, args, name=args.command, show_traceback=show)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
