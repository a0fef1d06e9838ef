"""A check run before every block of a model: how a long step is cancelled mid-way.

`check()` is any callable (ComfyUI's "was Cancel pressed?" in the nodes, nothing in the
CLI); a forward pre-hook on each block calls it, and when it raises, the exception leaves
the model's forward at that block. Without this a cancel would wait for the step (or the
VAE decode) to finish: minutes for a large video on a CPU.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from torch import nn

Check = Callable[[], None]


@contextmanager
def check_before_blocks(blocks: Iterable[nn.Module], check: Check | None) -> Iterator[None]:
    """Call `check()` before each of `blocks` runs, while the context is open (no-op for None)."""
    if check is None:
        yield
        return
    handles = [block.register_forward_pre_hook(lambda *_: check()) for block in blocks]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
