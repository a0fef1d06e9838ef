"""How many transformer blocks actually ran: the bench's "block_evaluations".

A step cache replaces whole blocks by a cached residual, so the count of blocks that ran
is the cache's real saving, independent of the machine's timing noise. One evaluation is
one block run on one sample (one guidance branch of one video): batched and sequential
guidance then count the same, 2 x layers x steps for an uncached CFG run.

The counter is a diffusers hook (the same hook registry the caches use), registered on each
block *before* any cache hook: it wraps the block's own forward, innermost, so it runs only
when a cache lets the block compute.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from diffusers.hooks import HookRegistry, ModelHook

COUNTER_HOOK = "echovideo_block_counter"


@dataclass
class BlockCount:
    """Running count of block evaluations (mutable: the hooks add to it while the run goes)."""

    evaluations: int = 0


class _CountingHook(ModelHook):
    def __init__(self, count: BlockCount) -> None:
        super().__init__()
        self.count = count

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        hidden = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        self.count.evaluations += int(hidden.shape[0])
        return self.fn_ref.original_forward(*args, **kwargs)


def transformer_blocks(transformer: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of a CogVideoX-style transformer, in order."""
    return list(transformer.transformer_blocks)


@contextmanager
def count_block_evaluations(transformer: torch.nn.Module) -> Iterator[BlockCount]:
    """Count every block evaluation inside the `with`; register this before any step cache."""
    count = BlockCount()
    registries = [HookRegistry.check_if_exists_or_initialize(block) for block in transformer_blocks(transformer)]
    for registry in registries:
        registry.register_hook(_CountingHook(count), COUNTER_HOOK)
    try:
        yield count
    finally:
        for registry in registries:
            registry.remove_hook(COUNTER_HOOK, recurse=False)
