"""Pipeline parity with the release on every reference case in tests/data (case A: 48x80,
9 frames, 4 steps, dynamic CFG). Sizes, steps and guidance come from case_meta.json, so a
case of another size or aspect runs the same tests. Bars: 1e-5 per stage, 1e-4 final
latents and float32 frames, 2e-2 float16 frames (tests/data/README.md)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from echovideo_core import EchoVideoPipeline
from echovideo_core.face_latent import pad_to_aspect, preprocess_face
from echovideo_core.geometry import vae_spatial_factor
from echovideo_core.guidance import guidance_scales
from conftest import skip_unless_kernels_match
from pipeline_kit import assert_stage_close, case_call, case_seed

STAGE_TOL = 1e-5
FINAL_TOL = 1e-4
FP16_FRAMES_TOL = 2e-2


@pytest.fixture(scope="module")
def ref(case_dir):
    return load_file(str(case_dir / "pipeline_case.safetensors"))


@pytest.fixture(scope="module")
def pipe(case_dir, tiny_transformer):
    return EchoVideoPipeline.from_pretrained(case_dir / "pipeline", transformer=tiny_transformer)


@pytest.fixture(scope="module")
def call(case_meta, ref):
    return dict(face_image=ref["in.face_image_uint8"].numpy(), arcface_embedding=ref["in.arcface_embedding"],
                **case_call(case_meta))


@pytest.fixture(scope="module")
def run(pipe, call, case_meta):
    """One full call (float16 decode, as released) with every step's latents recorded."""
    steps: list[torch.Tensor] = []
    out = pipe(**call, generator=torch.Generator("cpu").manual_seed(case_seed(case_meta)),
               callback=lambda step, total, latents: steps.append(latents.clone()))
    return out, steps


def test_prompt_token_ids_match_release(pipe, call, ref):
    negative, positive = pipe.encode_prompt(call["prompt"], call["negative_prompt"])
    assert torch.equal(positive.input_ids, ref["in.prompt_input_ids"])
    assert torch.equal(negative.input_ids, ref["in.negative_prompt_input_ids"])


def test_t5_embeddings_match_release(pipe, call, ref):
    negative, positive = pipe.encode_prompt(call["prompt"], call["negative_prompt"])
    assert_stage_close("T5 prompt embeddings", positive.embeds, ref["t5.prompt_embeds"], STAGE_TOL)
    assert_stage_close("T5 negative embeddings", negative.embeds, ref["t5.negative_prompt_embeds"], STAGE_TOL)


def test_siglip_outputs_match_release(pipe, call, ref):
    uncond, cond = pipe.face_features(call["face_image"], call["arcface_embedding"])
    assert_stage_close("SigLIP cond", cond.siglip, ref["siglip.last_hidden_state_cond"], STAGE_TOL)
    assert_stage_close("SigLIP uncond", uncond.siglip, ref["siglip.last_hidden_state_uncond"], STAGE_TOL)


def test_arcface_rows_are_bfloat16_rounded_as_released(pipe, call, ref):
    uncond, cond = pipe.face_features(call["face_image"], call["arcface_embedding"])
    rows = ref["dit.encoder_face_feats_hidden_states_in"]
    assert torch.equal(torch.cat([uncond.arcface, cond.arcface]), rows[:, 0])


def test_fused_conditioning_matches_release(pipe, call, ref):
    negative, positive = pipe.encode_prompt(call["prompt"], call["negative_prompt"])
    uncond, cond = pipe.face_features(call["face_image"], call["arcface_embedding"])
    fused = pipe.fuse(negative, positive, uncond, cond, do_cfg=True)
    assert_stage_close("fused conditioning", fused.tokens, ref["dit.fused_encoder_hidden_states"], STAGE_TOL)


def test_face_padding_matches_release(call, ref):
    padded = pad_to_aspect(call["face_image"], call["height"], call["width"])
    assert torch.equal(torch.from_numpy(padded), ref["face.padded_uint8"])


def test_face_resize_matches_release(pipe, call, ref):
    pixels = preprocess_face(call["face_image"], call["height"], call["width"], vae_spatial_factor(pipe.vae))
    assert_stage_close("face resize to [-1, 1]", pixels, ref["face.video_processor_out"], STAGE_TOL)


def test_initial_noise_and_face_latent_match_release(pipe, call, ref, case_meta):
    generator = torch.Generator("cpu").manual_seed(case_seed(case_meta))
    noise = pipe.initial_noise(call["height"], call["width"], call["num_frames"], generator)
    assert_stage_close("initial noise (rng.00)", noise, ref["rng.00"], 0.0)
    face = pipe.face_latent(call["face_image"], call["height"], call["width"], call["num_frames"], generator)
    assert_stage_close("face latent", face.latents, ref["dit.image_latents"], STAGE_TOL)


def test_guidance_per_step_matches_release(call, ref, case_meta):
    timesteps = ref["scheduler.timesteps"].tolist()
    assert timesteps == case_meta["pipeline_case"]["timesteps"]
    scales = guidance_scales(call["guidance_scale"], timesteps, "timestep" if call["use_dynamic_cfg"] else "constant")
    assert [repr(s) for s in scales] == case_meta["pipeline_case"]["guidance_scale_per_step_repr"]


def test_every_step_latents_match_release(run, call, ref):
    _, steps = run
    assert len(steps) == call["num_inference_steps"]
    for i, latents in enumerate(steps):
        assert_stage_close(f"step {i} latents", latents, ref[f"step{i}.latents_after"], STAGE_TOL)


def test_final_latents_match_release(run, ref):
    out, _ = run
    assert out.latents.dtype == torch.float32
    assert_stage_close("final latents", out.latents, ref["out.final_latents_fp32"], FINAL_TOL)


def test_float16_decode_matches_release(run, ref):
    out, _ = run
    assert_stage_close("frames, float16 VAE", out.frames, ref["out.frames"], FP16_FRAMES_TOL)


def test_float32_decode_matches_release(pipe, call, ref, case_meta):
    out = pipe(**call, generator=torch.Generator("cpu").manual_seed(case_seed(case_meta)),
               decode_dtype=torch.float32)
    assert_stage_close("frames, float32 VAE", out.frames, ref["out.frames_fp32_vae"], FINAL_TOL)


def test_as_released_run_is_bit_exact_where_the_kernels_match(run, ref, case_dir):
    """Latents of every step and the float16-decoded frames at 0.0 on a machine whose float32
    kernels match the reference machine's (see conftest.kernel_drift)."""
    skip_unless_kernels_match(case_dir)
    out, steps = run
    for i, latents in enumerate(steps):
        assert torch.equal(latents.cpu(), ref[f"step{i}.latents_after"]), f"step {i} latents differ"
    assert torch.equal(torch.as_tensor(out.frames), ref["out.frames"])


def test_random_draws_follow_the_release_order(pipe, call, case_meta):
    seed = case_seed(case_meta)
    generator = torch.Generator("cpu").manual_seed(seed)
    pipe(**call, generator=generator, output_type="latent")
    replay = torch.Generator("cpu").manual_seed(seed)
    for _, shape, _ in case_meta["pipeline_case"]["rng_draws_in_order"]:
        torch.randn(shape, generator=replay)
    assert torch.equal(generator.get_state(), replay.get_state())
