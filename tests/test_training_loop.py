"""The trainer on the tiny kit: loss goes down, stage 2 drops the face latent, exports load back."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from echovideo_core.io import read_video
from echovideo_core.loading import load_transformer
from echovideo_core.pipeline import EchoVideoPipeline
from echovideo_core.training.checkpoint import list_checkpoints
from echovideo_core.training.config import config_from_dict
from echovideo_core.training.data import PreparedDataset
from echovideo_core.training.preview import face_score
from echovideo_core.lora import LoraMismatchError, apply_lora, save_lora
from echovideo_core.training.trainable import configure_trainable, lora_export_tensors
from echovideo_core.training.trainer import micro_step, read_metrics, step_context
from training_fixtures import FRAMES, SIZE, prepared_dataset, tiny_kit, train_config, write_clip, one_thread, run_training  # noqa: F401 (one_thread: autouse fixture)


def fixed_batch_loss(model: torch.nn.Module, cfg) -> float:
    """Loss on all 8 samples with fixed timesteps / noise (drawn for a step no run reaches)."""
    dataset = PreparedDataset(cfg.data.root)
    batch = default_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        loss, _ = micro_step(model, batch, step_context(cfg, dataset, model, torch.device("cpu")), 10**6,
                             torch.device("cpu"))
    return float(loss)


def base_model() -> torch.nn.Module:
    return load_transformer(tiny_kit()[0])


def generate_latents(transformer: torch.nn.Module) -> torch.Tensor:
    """A 2-step tiny generation from the first sample's face; the final latents."""
    image, arcface, caption = PreparedDataset(prepared_dataset()).identity(0)
    pipe = EchoVideoPipeline.from_pretrained(tiny_kit()[0], transformer=transformer)
    out = pipe(image.numpy(), arcface, caption, height=SIZE, width=SIZE, num_frames=FRAMES, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0), output_type="latent")
    return out.latents


def test_stage_one_lowers_the_loss_on_a_fixed_batch(tmp_path):
    cfg, result = run_training(tmp_path, max_steps=300, trainable={"mode": "full"}, checkpoint={"every": 1000})
    before = fixed_batch_loss(base_model(), cfg)
    after = fixed_batch_loss(load_transformer(result.exports[0]), cfg)
    print(f"fixed-batch loss {before:.4f} -> {after:.4f} (ratio {after / before:.3f})")
    assert after < 0.7 * before, f"fixed-batch loss {before:.4f} -> {after:.4f} (ratio {after / before:.3f})"
    assert all(r["face_latent_dropped"] == 0 for r in read_metrics(cfg.output_dir))  # stage 1


def test_stage_two_drop_probability_is_honoured_in_a_run(tmp_path):
    p = 0.3
    cfg, _ = run_training(tmp_path, max_steps=60, stage={"stage": 2, "p_drop_face_latent": p}, checkpoint={"every": 1000})
    records = read_metrics(cfg.output_dir)
    n = sum(r["samples"] for r in records)
    dropped = sum(r["face_latent_dropped"] for r in records)
    bound = 4 * math.sqrt(n * p * (1 - p))
    assert n == 120 and abs(dropped - n * p) < bound, f"{dropped}/{n} dropped, expected {n * p:.0f} +- {bound:.0f}"


def test_gradient_accumulation_matches_the_larger_batch(tmp_path):
    _, big = run_training(tmp_path / "big", max_steps=4, checkpoint={"every": 1000})
    _, accumulated = run_training(tmp_path / "acc", max_steps=4, gradient_accumulation_steps=2, data={"batch_size": 1},
                         checkpoint={"every": 1000})
    np.testing.assert_allclose(accumulated.losses, big.losses, rtol=1e-5)


def test_old_checkpoints_are_pruned_and_no_partial_one_is_left(tmp_path):
    cfg, _ = run_training(tmp_path, max_steps=12, checkpoint={"every": 3, "keep_last": 2})
    assert [step for step, _ in list_checkpoints(cfg.output_dir)] == [9, 12]
    assert not list(Path(cfg.output_dir).glob(".tmp-*"))


def test_full_export_loads_through_the_pipeline_and_changes_its_output(tmp_path):
    _, result = run_training(tmp_path, max_steps=20, trainable={"mode": "full"}, checkpoint={"every": 1000})
    (folder,) = result.exports
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    trained = load_transformer(folder)
    change = (generate_latents(trained) - generate_latents(base_model())).abs().max()
    assert change > 1e-3, f"trained weights changed the output by only {change:.2e}"


def test_trained_lora_changes_the_pipeline_output_with_its_strength(tmp_path):
    _, result = run_training(tmp_path, max_steps=20, trainable={"mode": "iitf_lora"}, checkpoint={"every": 1000})
    (lora,) = result.exports
    base = generate_latents(base_model())
    full_strength, zero_strength = base_model(), base_model()
    applied = apply_lora(full_strength, lora, strength=1.0)
    apply_lora(zero_strength, lora, strength=0.0)
    assert applied.modules == 4 and applied.iitf_tensors > 0  # 1 block x (to_q, to_k, to_v, to_out.0)
    assert (generate_latents(full_strength) - base).abs().max() > 1e-3
    torch.testing.assert_close(generate_latents(zero_strength), base, rtol=0, atol=1e-6)


def test_lora_file_reproduces_the_adapted_model(tmp_path):
    cfg = config_from_dict(train_config(tmp_path, trainable={"mode": "iitf_lora"}))
    adapted = base_model()
    configure_trainable(adapted, cfg.trainable)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if ".lora_" in name or name.startswith("face_proj"):
                param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    path = save_lora(lora_export_tensors(adapted.state_dict()), tmp_path / "lora.safetensors",
                     rank=cfg.trainable.lora_rank, alpha=cfg.trainable.lora_alpha)
    merged = base_model()
    apply_lora(merged, path, strength=1.0)
    torch.testing.assert_close(fixed_batch_loss(merged, cfg), fixed_batch_loss(adapted.eval(), cfg), rtol=1e-5, atol=1e-6)


def test_lora_for_another_model_is_refused_with_the_keys(tmp_path):
    path = save_lora({"transformer_blocks.7.attn1.to_q.lora_A.weight": torch.zeros(4, 32),
                      "transformer_blocks.7.attn1.to_q.lora_B.weight": torch.zeros(32, 4)},
                     tmp_path / "other.safetensors", rank=4, alpha=4)
    with pytest.raises(LoraMismatchError, match=r"transformer_blocks\.7\.attn1\.to_q: no such linear layer"):
        apply_lora(base_model(), path)


def test_validation_writes_a_video_and_reports_the_face_score(tmp_path):
    _, faces = tiny_kit()
    cfg, _ = run_training(tmp_path, max_steps=2, checkpoint={"every": 1000},
                 validation={"every": 2, "num_inference_steps": 2, "face_models": str(faces)})
    report = json.loads((Path(cfg.output_dir) / "validation" / "step_00000002.json").read_text())
    assert read_video(report["video"]).shape == (FRAMES, SIZE, SIZE, 3)
    assert report["frames_scored"] == 8
    if report["frames_with_face"]:
        assert -1.0 <= report["face_score"] <= 1.0 and report["note"] == ""
    else:
        assert report["face_score"] is None and report["note"] == "no face found in any of 8 scored frames"


def test_face_score_is_the_arcface_cosine_to_the_reference(tmp_path):
    from echovideo_core.face import FacePreparer

    preparer = FacePreparer(tiny_kit()[1])
    first = read_video(write_clip(tmp_path / "a.mp4", seed=0, frames=4))[:1]
    with_face = np.repeat(first, 4, axis=0).astype(np.float32) / 255  # the same face in every frame
    without = read_video(write_clip(tmp_path / "b.mp4", seed=0, frames=4, face=False)).astype(np.float32) / 255
    reference = preparer.prepare((with_face[0] * 255).round().astype(np.uint8)).arcface
    score, found, scored = face_score(with_face, reference, preparer)
    assert (found, scored) == (4, 4) and score == pytest.approx(1.0, abs=1e-6)
    assert face_score(with_face, -reference, preparer)[0] == pytest.approx(-1.0, abs=1e-6)
    assert face_score(without, reference, preparer) == (None, 0, 4)


def test_validation_without_face_models_says_the_score_is_unavailable(tmp_path):
    cfg, _ = run_training(tmp_path, max_steps=1, checkpoint={"every": 1000}, validation={"every": 1, "num_inference_steps": 1})
    report = json.loads((Path(cfg.output_dir) / "validation" / "step_00000001.json").read_text())
    assert report["face_score"] is None
    assert report["note"] == "face score unavailable: validation.face_models is not set"


def test_a_fresh_run_refuses_an_output_dir_with_checkpoints(tmp_path):
    run_training(tmp_path, max_steps=1, checkpoint={"every": 1000})
    with pytest.raises(FileExistsError, match="already holds checkpoints: pass --resume latest"):
        run_training(tmp_path, max_steps=2, checkpoint={"every": 1000})
