"""Regional torch.compile: each repeated block's forward compiled, the rest eager.

The 42 blocks share one code path and one input shape, so Dynamo compiles the block once
(later blocks reuse the graph) and the warm-up costs one block's compilation instead of the
whole model's (the recipe diffusers' `compile_repeated_blocks` follows; our parent class
declares no `_repeated_blocks`, so the blocks are named here). Only the block's own
`forward` is compiled, before any cache or counter hook wraps it: the caches' Python
decisions (`.item()`, per-branch state) stay eager and cause no graph breaks.

The first call after `compile_blocks` pays the compilation (the warm-up, which the bench
reports separately from the steady time per step). Compiled kernels fuse and reorder float
operations, so results match eager to float32 rounding, not bit for bit.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from echovideo_core.acceleration.counting import transformer_blocks


def compile_blocks(transformer: torch.nn.Module, **compile_kwargs) -> None:
    """Replace each block's forward by its compiled version (in place, instance attribute)."""
    for block in transformer_blocks(transformer):
        block.forward = torch.compile(block.forward, **compile_kwargs)


def uncompile_blocks(transformer: torch.nn.Module) -> None:
    """Back to the class's eager forward."""
    for block in transformer_blocks(transformer):
        block.__dict__.pop("forward", None)


@contextmanager
def compiled_blocks(transformer: torch.nn.Module, enabled: bool = True, **compile_kwargs) -> Iterator[None]:
    if not enabled:
        yield
        return
    compile_blocks(transformer, **compile_kwargs)
    try:
        yield
    finally:
        uncompile_blocks(transformer)
