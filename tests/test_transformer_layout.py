"""docs/design.md section 2-3: the full-size state-dict layout and the released config schema."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from echovideo_core import EchoVideoTransformer3DModel
from echovideo_core.loading import build_on_meta

DATA = Path(__file__).parent / "data"
LISTING = json.loads((DATA / "echovideo_transformer_keys.json").read_text())
DEFAULTS = json.loads((DATA / "echovideo_transformer_config_defaults.json").read_text())


def test_full_size_model_has_the_released_keys_in_order_with_their_shapes():
    model = build_on_meta(LISTING["constructor_kwargs"])
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    theirs = [(e["key"], e["shape"]) for e in LISTING["keys"]]
    assert ours == theirs


def test_full_size_model_has_1081_tensors_and_5621259202_parameters():
    model = build_on_meta(LISTING["constructor_kwargs"])
    assert len(model.state_dict()) == 1081 == LISTING["num_tensors"]
    assert sum(p.numel() for p in model.parameters()) == 5_621_259_202 == LISTING["total_parameters"]


def test_parameters_per_top_level_module_match_the_listing():
    model = build_on_meta(LISTING["constructor_kwargs"])
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        counts[name.split(".")[0]] = counts.get(name.split(".")[0], 0) + p.numel()
    assert counts == {k: v["parameters"] for k, v in LISTING["parameters_by_top_level_module"].items()}


def test_state_dict_has_no_persistent_buffers():
    model = build_on_meta(LISTING["constructor_kwargs"])
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}


def test_builds_under_the_meta_device_context_without_allocating():
    with torch.device("meta"):
        model = EchoVideoTransformer3DModel.from_config(LISTING["resolved_config"])
    assert all(p.is_meta for p in model.parameters())


def test_released_config_json_loads_unchanged_whatever_its_class_name():
    config = json.loads((DATA / "case_a" / "pipeline" / "transformer" / "config.json").read_text())
    assert config["_class_name"] == "EchoVideoLDM"
    model = build_on_meta(config)
    assert model.config.num_layers == config["num_layers"]
    assert model.config.in_channels == config["in_channels"]


def test_every_argument_the_release_registers_is_accepted_with_its_default():
    registered = DEFAULTS["registered_defaults"]
    model = build_on_meta({**registered, "num_layers": 1})
    for name, default in registered.items():
        if name != "num_layers":
            assert model.config[name] == default, name


def test_unknown_config_keys_are_ignored():
    base = {**LISTING["resolved_config"], "num_layers": 1}
    model = build_on_meta({**base, "_class_name": "X", "_diffusers_version": "0.31.0", "made_up_key": 3})
    plain = build_on_meta(base)
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}


def test_config_round_trips_through_save_and_load(tmp_path):
    config = {**LISTING["resolved_config"], "num_layers": 1}
    model = build_on_meta(config)
    model.save_config(tmp_path)
    again = build_on_meta(EchoVideoTransformer3DModel.load_config(tmp_path))
    public = lambda config: {k: v for k, v in config.items() if not k.startswith("_")}  # noqa: E731
    assert public(again.config) == public(model.config)


def test_saved_config_reloads_without_unexpected_keys(tmp_path, caplog):
    model = build_on_meta({**LISTING["resolved_config"], "num_layers": 1})
    model.save_config(tmp_path)
    with caplog.at_level("WARNING"):
        EchoVideoTransformer3DModel.from_config(EchoVideoTransformer3DModel.load_config(tmp_path))
    assert "not expected" not in caplog.text
