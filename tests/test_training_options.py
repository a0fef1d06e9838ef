"""Trainer options: bf16 autocast with bf16 frozen weights, gradient checkpointing, EMA, 8-bit Adam fallback."""
from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from echovideo_core.training.checkpoint import list_checkpoints
from echovideo_core.training.config import config_from_dict
from echovideo_core.lora import IITF_KEY_PREFIX
from echovideo_core.training.trainer import build_model
from training_fixtures import train_config, one_thread, run_training  # noqa: F401 (one_thread: autouse fixture)


def test_bf16_autocast_with_bf16_frozen_weights_trains(tmp_path):
    _, result = run_training(tmp_path, max_steps=3, mixed_precision="bf16", model={"frozen_dtype": "bfloat16"},
                    trainable={"mode": "iitf_lora"}, checkpoint={"every": 1000})
    assert all(math.isfinite(loss) for loss in result.losses)
    lora = load_file(str(result.exports[0]))
    assert {t.dtype for t in lora.values()} == {torch.float32}  # trainable weights stay float32


def test_gradient_checkpointing_does_not_change_the_losses(tmp_path):
    _, plain = run_training(tmp_path / "plain", max_steps=3, trainable={"mode": "full"}, checkpoint={"every": 1000})
    _, checkpointed = run_training(tmp_path / "ckpt", max_steps=3, trainable={"mode": "full"}, gradient_checkpointing=True,
                          checkpoint={"every": 1000})
    np.testing.assert_allclose(checkpointed.losses, plain.losses, rtol=1e-5)
    model, _ = build_model(config_from_dict(train_config(tmp_path / "x", gradient_checkpointing=True)))
    assert model.is_gradient_checkpointing  # the run above really recomputed activations


def test_ema_is_saved_with_checkpoints_and_exported(tmp_path):
    decay = 0.5
    cfg, result = run_training(tmp_path, max_steps=3, ema={"enabled": True, "decay": decay},
                      checkpoint={"every": 1, "keep_last": 10})
    (step1, ck1), (step2, ck2), (step3, ck3) = list_checkpoints(cfg.output_dir)
    ema2, ema3 = load_file(str(ck2 / "ema.safetensors")), load_file(str(ck3 / "ema.safetensors"))
    weights3 = load_file(str(ck3 / "model.safetensors"))
    key = "face_proj.weight"
    torch.testing.assert_close(ema3[key], decay * ema2[key] + (1 - decay) * weights3[key])
    exported = load_file(str(Path(cfg.output_dir) / "final" / "lora.safetensors"))
    torch.testing.assert_close(exported[IITF_KEY_PREFIX + key], ema3[key])


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_without_bitsandbytes_adamw_is_used_and_said(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="echovideo_core.training.trainer"):
        run_training(tmp_path, max_steps=1, optimizer={"use_8bit": True}, checkpoint={"every": 1000})
    assert "torch AdamW (bitsandbytes is not installed, 8-bit Adam unavailable)" in caplog.text


def test_full_export_shards_like_the_release_and_loads_back(tmp_path):
    from echovideo_core.loading import load_transformer
    from echovideo_core.training.checkpoint import save_transformer_folder
    from training_fixtures import tiny_kit

    model = load_transformer(tiny_kit()[0])
    folder = save_transformer_folder(model.state_dict(), dict(model.config), tmp_path / "transformer",
                                     max_shard_bytes=200_000)
    names = sorted(p.name for p in folder.iterdir())
    assert "diffusion_pytorch_model.safetensors.index.json" in names and "config.json" in names
    assert sum(n.endswith(".safetensors") for n in names) > 1
    loaded = load_transformer(folder)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(FileExistsError, match="exports never overwrite"):
        save_transformer_folder(model.state_dict(), dict(model.config), folder)


def test_frozen_weights_load_in_bf16_and_trainable_ones_are_float32(tmp_path):
    cfg = config_from_dict(train_config(tmp_path, mixed_precision="bf16", model={"frozen_dtype": "bfloat16"},
                                        trainable={"mode": "iitf_lora"}))
    model, trainable = build_model(cfg)
    dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert {dtypes[n] for n in trainable} == {torch.float32}
    assert {d for n, d in dtypes.items() if n not in trainable} == {torch.bfloat16}


def test_stage_two_starts_from_the_stage_one_lora(tmp_path):
    from echovideo_core.lora import read_lora
    from echovideo_core.training.trainable import lora_export_tensors

    _, stage1 = run_training(tmp_path / "s1", max_steps=3, trainable={"mode": "iitf_lora"}, checkpoint={"every": 1000})
    (lora,) = stage1.exports
    cfg = config_from_dict(train_config(tmp_path / "s2", stage={"stage": 2}, trainable={"mode": "iitf_lora"},
                                        model={"init_lora": str(lora)}))
    model, _ = build_model(cfg)
    started = lora_export_tensors(model.state_dict())
    saved, _ = read_lora(lora)
    assert started.keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(started[key], value), key
    other_rank = config_from_dict(train_config(tmp_path / "s3", trainable={"mode": "iitf_lora", "lora_rank": 8},
                                               model={"init_lora": str(lora)}))
    with pytest.raises(ValueError, match="do not fit the trainable parameters"):
        build_model(other_rank)


def test_sharded_training_refuses_validation_ema_and_deepspeed_accumulation(tmp_path):
    from echovideo_core.training.trainer import check_distributed

    cfg = config_from_dict(train_config(tmp_path, validation={"every": 10}, ema={"enabled": True},
                                        gradient_accumulation_steps=2))
    check_distributed("MULTI_GPU", cfg)  # DDP: all supported
    with pytest.raises(ValueError, match="with FSDP: validation videos need the whole model.*EMA of sharded"):
        check_distributed("FSDP", cfg)
    with pytest.raises(ValueError, match="gradient_accumulation_steps in the DeepSpeed config"):
        check_distributed("DEEPSPEED", cfg)
