"""Shared tiny models for the weight-format tests (written once per session, in bf16 like
the release): a released-layout transformer folder with random weights, and its config."""
from __future__ import annotations

from pathlib import Path

import pytest

from echovideo_core.testing.full_size import RandomWeights, write_random_transformer
from echovideo_core.tiny import TINY_TRANSFORMER
from echovideo_core.weights.transformer import IITF_PREFIXES  # noqa: F401  (re-exported for the tests)


@pytest.fixture(scope="session")
def tiny_weights() -> RandomWeights:
    return RandomWeights(TINY_TRANSFORMER, seed=3)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """transformer/ folder of the tiny DiT (bf16, two shards, index, config.json)."""
    root = tmp_path_factory.mktemp("tiny_weights")
    write_random_transformer(root / "transformer", config=TINY_TRANSFORMER, seed=3, shard_bytes=100_000)
    return root


def without(mapping: dict, prefixes: tuple[str, ...]) -> dict:
    return {k: v for k, v in mapping.items() if not k.startswith(prefixes)}

