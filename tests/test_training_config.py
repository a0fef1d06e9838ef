"""train.yaml loading: the shipped example, unknown keys, invalid values."""
from __future__ import annotations

from pathlib import Path

import pytest

from echovideo_core.training.config import TrainConfigError, config_from_dict, load_config

EXAMPLE = Path(__file__).parents[1] / "configs" / "train.yaml"


def test_the_example_config_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.stage.stage == 1 and cfg.trainable.mode == "iitf_lora"
    assert cfg.trainable.lora_targets == ("to_q", "to_k", "to_v", "to_out.0")
    assert cfg.optimizer.betas == (0.9, 0.95)


def test_overrides_win_over_the_file():
    cfg = load_config(EXAMPLE, {"max_steps": 7, "stage": {"stage": 2}})
    assert cfg.max_steps == 7 and cfg.stage.stage == 2 and cfg.stage.p_drop_face_latent == 0.5


def test_unknown_keys_are_an_error():
    with pytest.raises(TrainConfigError, match="unknown key.*p_drop_face_latnt"):
        config_from_dict({"stage": {"p_drop_face_latnt": 0.2}})


def test_probabilities_must_be_in_unit_interval():
    with pytest.raises(TrainConfigError, match="stage.p_drop_face_latent must be in"):
        config_from_dict({"stage": {"p_drop_face_latent": 1.5}})


def test_trainable_mode_must_be_known():
    with pytest.raises(TrainConfigError, match="trainable.mode must be one of"):
        config_from_dict({"trainable": {"mode": "everything"}})


def test_bfloat16_frozen_weights_need_bf16_autocast():
    with pytest.raises(TrainConfigError, match="frozen_dtype bfloat16 needs mixed_precision bf16"):
        config_from_dict({"mixed_precision": "no"})


@pytest.mark.parametrize("name, kind, zero_stage", [("ddp", "MULTI_GPU", None), ("fsdp", "FSDP", None),
                                                     ("zero2", "DEEPSPEED", 2), ("zero3", "DEEPSPEED", 3)])
def test_shipped_accelerate_configs_load(name, kind, zero_stage):
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(EXAMPLE.parent / "accelerate" / f"{name}.yaml"))
    assert cfg.distributed_type.name == kind and cfg.mixed_precision == "bf16"
    assert (cfg.deepspeed_config or {}).get("zero_stage") == zero_stage


def test_train_command_reports_a_missing_config_in_one_line(tmp_path, capsys):
    from echovideo_core.cli import main

    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"echovideo train: --config {tmp_path / 'nope.yaml'}: no such file"


def test_train_command_reports_unprepared_data_in_one_line(tmp_path, capsys):
    from echovideo_core.cli import main

    config = tmp_path / "train.yaml"
    config.write_text(f"output_dir: {tmp_path / 'run'}\ndata:\n  root: {tmp_path / 'nothing'}\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "has no index.json: run `echovideo prepare-data" in capsys.readouterr().err


def test_stage_two_draws_another_random_stream_than_stage_one_by_default():
    assert config_from_dict({"stage": {"stage": 1}}).seed == 0
    assert config_from_dict({"stage": {"stage": 2}}).seed == 1
    assert config_from_dict({"seed": 7, "stage": {"stage": 2}}).seed == 7


def test_invalid_yaml_is_a_config_error_naming_file_and_line(tmp_path):
    (tmp_path / "t.yaml").write_text("output_dir: x\nstage:\n  stage: [1\n")
    with pytest.raises(TrainConfigError, match=r"t.yaml is not valid YAML \(line 4\)"):
        load_config(tmp_path / "t.yaml")


def test_a_value_of_the_wrong_type_is_a_config_error(tmp_path):
    (tmp_path / "t.yaml").write_text("max_steps: [1, 2]\n")
    with pytest.raises(TrainConfigError, match="t.yaml: a value has the wrong type"):
        load_config(tmp_path / "t.yaml")


def test_stage_two_finds_the_noise_schedule_beside_a_stage_one_export(tmp_path):
    import json

    from echovideo_core.loading.scheduler import RELEASE_SCHEDULER_CONFIG
    from echovideo_core.training.trainer import scheduler_config

    export = tmp_path / "final"
    (export / "transformer").mkdir(parents=True)
    (export / "scheduler").mkdir()
    (export / "scheduler" / "scheduler_config.json").write_text(json.dumps({**RELEASE_SCHEDULER_CONFIG, "beta_end": 0.02}))
    cfg = config_from_dict({"model": {"pretrained": str(export / "transformer")}, "stage": {"stage": 2}})
    assert scheduler_config(cfg)["beta_end"] == 0.02
    bare = config_from_dict({"model": {"pretrained": str(tmp_path / "model.safetensors")}})
    assert scheduler_config(bare) == RELEASE_SCHEDULER_CONFIG  # nothing beside it: the release's settings
