"""The random full-size DiT: the released layout, deterministic, written to disk streaming."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from echovideo_core.loading import load_transformer
from echovideo_core.testing.full_size import FULL_TRANSFORMER, RandomWeights, write_random_transformer
from echovideo_core.tiny import TINY_TRANSFORMER

KEYS = Path(__file__).parent / "data" / "echovideo_transformer_keys.json"


def test_the_full_size_random_weights_have_the_released_layout():
    listing = json.loads(KEYS.read_text())
    released = {entry["key"]: tuple(entry["shape"]) for entry in listing["keys"]}
    shapes = RandomWeights(FULL_TRANSFORMER).shapes()
    assert list(shapes) == list(released) and shapes == released
    assert sum(torch.Size(s).numel() for s in shapes.values()) == listing["total_parameters"]


def test_a_tensor_depends_only_on_the_seed_and_its_key():
    first, second = RandomWeights(TINY_TRANSFORMER, seed=5), RandomWeights(TINY_TRANSFORMER, seed=5)
    keys = list(first.shapes())
    assert torch.equal(first.read(keys[-1]).data, second.read(keys[-1]).data)  # read order does not matter
    assert not torch.equal(first.read(keys[0]).data, RandomWeights(TINY_TRANSFORMER, seed=6).read(keys[0]).data)
    assert first.read(keys[0]).data.dtype == torch.bfloat16


def test_a_written_folder_is_a_sharded_released_layout_holding_the_same_weights(tmp_path):
    folder = write_random_transformer(tmp_path / "transformer", config=TINY_TRANSFORMER, seed=2, shard_bytes=50_000)
    index = json.loads((folder / "diffusion_pytorch_model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    assert json.loads((folder / "config.json").read_text())["_class_name"] == "EchoVideoTransformer3DModel"
    loaded = load_transformer(folder, torch_dtype=torch.bfloat16).state_dict()
    source = RandomWeights(TINY_TRANSFORMER, seed=2)
    assert all(torch.equal(loaded[k], source.read(k).data) for k in source.shapes())


def test_a_written_single_file_carries_its_config(tmp_path):
    path = write_random_transformer(tmp_path / "echovideo.safetensors", config=TINY_TRANSFORMER, seed=2)
    assert load_transformer(path, torch_dtype=torch.bfloat16).config.num_layers == TINY_TRANSFORMER["num_layers"]
