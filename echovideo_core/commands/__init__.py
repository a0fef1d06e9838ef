"""CLI subcommands, one module each; every module exposes `register(subparsers)`.

A subcommand sets `run=callable(args) -> int` as its parser default.
"""
