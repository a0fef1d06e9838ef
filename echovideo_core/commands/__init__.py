"""CLI subcommands, one module each; every module exposes `register(subparsers)`.

A subcommand sets `run=callable(args) -> int` as its parser default. Each `run` checks every
argument, input and output first (light imports only), then imports and loads what it needs;
failures propagate to the one error boundary in `echovideo_core.cli`.
"""
from __future__ import annotations

from typing import Any, Callable

from echovideo_core.errors import InvalidInputError


def check_argument(flag: str, check: Callable[..., Any], *values: Any) -> None:
    """Run a library check (validation.py) on a flag's value; its message then names the flag."""
    try:
        check(*values)
    except InvalidInputError as err:
        raise InvalidInputError(f"{flag}: {err}") from None
