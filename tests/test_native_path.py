"""The native ComfyUI path's library side (no ComfyUI needed): core's key layout, the IITF
layers read alone, the release's sampling restated in sigma terms, the release's draws.
The same functions inside a real ComfyUI: tests/test_comfyui_live.py (native tests)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from echovideo_core.errors import InvalidInputError
from echovideo_core.guidance import guidance_scales, guided_output
from echovideo_core.loading.iitf import read_iitf_layers
from echovideo_core.loading import load_transformer, save_single_file
from echovideo_core.loading.scheduler import RELEASE_SCHEDULER_CONFIG
from echovideo_core.native_identity import check_text_embeds, face_latent_from_moments, face_pixels
from echovideo_core.native_layout import native_key, to_native_layout, to_release_layout
from echovideo_core.native_sampling import (dynamic_guided, release_dpm_sample, release_stream_after_inputs,
                                            ve_from_vp, vp_from_ve)
from echovideo_core.rotary import rotary_embeddings
from echovideo_core.sampling import GuidancePlan, SamplingInputs, denoise, make_scheduler
from echovideo_core.tiny import TINY_TRANSFORMER
from echovideo_core.transformer import EchoVideoTransformer3DModel

KEYS = json.loads((Path(__file__).parent / "data" / "echovideo_transformer_keys.json").read_text())["keys"]


@pytest.fixture(scope="module")
def tiny_dit() -> EchoVideoTransformer3DModel:
    torch.manual_seed(0)
    return EchoVideoTransformer3DModel(**TINY_TRANSFORMER).eval()


def test_native_layout_names_the_release_tensors_as_core_does_and_round_trips():
    released = [k["key"] for k in KEYS]
    native = [native_key(k) for k in released]
    assert len(set(native)) == len(released)
    for name in ("blocks.0.q.weight", "blocks.0.k.bias", "blocks.0.v.weight", "blocks.0.attn_out.weight",
                 "blocks.0.norm_q.weight", "blocks.41.ff_proj.weight", "blocks.41.ff_out.bias", "blocks.3.norm1.linear.weight",
                 "time_embedding_linear_1.weight", "patch_embed.proj.weight", "norm_out.linear.weight",
                 "face_prj_wofc.layers.0.0.to_kv.weight", "text_proj.weight"):
        assert name in native, name
    assert not [k for k in native if k.startswith("transformer_blocks.") or ".attn1." in k or ".ff.net." in k]
    table = {k: i for i, k in enumerate(released)}
    assert to_release_layout(to_native_layout(table)) == table


def test_pack_loader_reads_a_core_layout_file_as_the_same_model(tiny_dit, tmp_path):
    from echovideo_core.commands.export_native import export_native

    original = save_single_file(tiny_dit, tmp_path / "release.safetensors")
    native = export_native(original, tmp_path / "native.safetensors", "fp32")
    loaded = load_transformer(native)
    assert loaded.config.resampler_dim_head == tiny_dit.config.resampler_dim_head
    for key, value in tiny_dit.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_native(original, native, "fp32")


def test_iitf_layers_read_alone_from_the_file_fuse_exactly_like_the_transformer(tiny_dit, tmp_path):
    from echovideo_core.commands.export_native import export_native

    native = export_native(save_single_file(tiny_dit, tmp_path / "r.safetensors"), tmp_path / "n.safetensors", "fp32")
    layers = read_iitf_layers(native)
    assert {k.split(".")[0] for k in layers.state_dict()} == {"face_proj", "text_proj", "face_info_proj", "face_prj_wofc"}
    torch.manual_seed(1)
    text, siglip, arcface = torch.randn(2, 226, 32), torch.randn(2, 16, 32), torch.randn(2, 512)
    assert torch.equal(layers.fuse(text, siglip, arcface), tiny_dit.fuse(text, siglip, arcface))


def test_conditioning_that_is_not_226_t5_tokens_is_refused_naming_the_cogvideox_clip_type(tiny_dit, tmp_path):
    from echovideo_core.commands.export_native import export_native

    native = export_native(save_single_file(tiny_dit, tmp_path / "r.safetensors"), tmp_path / "n.safetensors", "fp32")
    with pytest.raises(InvalidInputError, match=r"positive conditioning has shape \(1, 77, 32\).*type 'cogvideox'"):
        check_text_embeds(torch.zeros(1, 77, 32), read_iitf_layers(native), "positive")


@pytest.mark.parametrize("schedule", ["timestep", "step_index", "constant"])
def test_dynamic_cfg_on_two_branches_is_the_pipelines_schedule(schedule):
    timesteps = make_scheduler(RELEASE_SCHEDULER_CONFIG, 7).timesteps.tolist()
    scales = guidance_scales(6.0, timesteps, schedule)
    uncond, cond = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    for i, t in enumerate(timesteps):
        got = dynamic_guided(uncond, cond, 6.0, timestep=int(t), step_index=i, num_steps=7, cfg_schedule=schedule)
        assert torch.equal(got, guided_output(uncond, cond, scales[i]))


def test_release_stream_after_inputs_is_where_the_pipelines_generator_stands_after_noise_and_face():
    generator = torch.Generator("cpu").manual_seed(5)
    torch.randn((1, 3, 4, 6, 10), generator=generator)  # the pipeline's noise (B, F', C, h, w)
    torch.randn((1, 4, 1, 6, 10), generator=generator)  # the face-latent sample (B, C, 1, h, w)
    ours = release_stream_after_inputs(5, (1, 4, 3, 6, 10))
    assert torch.equal(torch.randn(100, generator=ours), torch.randn(100, generator=generator))


def test_face_latent_from_vae_moments_is_the_pipelines_face_latent():
    from diffusers import AutoencoderKLCogVideoX

    from echovideo_core.face_latent import encode_face_latent
    from echovideo_core.tiny import TINY_VAE

    torch.manual_seed(2)
    vae = AutoencoderKLCogVideoX(**TINY_VAE).eval()
    image = torch.randint(0, 256, (512, 512, 3), dtype=torch.uint8).numpy()
    generator = torch.Generator("cpu").manual_seed(9)
    torch.randn((1, 3, 4, 6, 10), generator=generator)  # the pipeline draws the noise first
    expected = encode_face_latent(vae, image, height=48, width=80, num_frames=9, generator=generator).latents
    with torch.no_grad():
        moments = vae.encode(face_pixels(image, height=48, width=80, spatial_factor=8)).latent_dist.parameters
    plain = face_latent_from_moments(moments, seed=9, latent_frames=3)
    assert torch.equal(plain.permute(0, 2, 1, 3, 4) * 0.7, expected)


def test_release_dpm_sampler_in_sigma_terms_reproduces_the_pipelines_loop(tiny_dit):
    """A ComfyUI-style denoiser (x0 from v at sigma, the DiT reading x / sqrt(1 + sigma^2))
    under release_dpm_sample gives the pipeline's denoising loop, noise draws included."""
    steps, seed = 3, 11
    scheduler = make_scheduler(RELEASE_SCHEDULER_CONFIG, steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    alphas = scheduler.alphas_cumprod[timesteps].clamp_min(4.8973451890853435e-08)  # ComfyUI's zero-SNR floor
    sigmas = torch.cat([((1 - alphas) / alphas) ** 0.5, torch.zeros(1)])
    torch.manual_seed(3)
    noise, face, tokens = torch.randn(1, 3, 4, 6, 10), torch.randn(1, 3, 4, 6, 10), torch.randn(1, 226, 32)
    rotary = rotary_embeddings(tiny_dit.config, height=48, width=80, num_frames=9)
    plan = GuidancePlan(conditioning=tokens, guidance=[1.0] * steps, do_cfg=False)
    inputs = SamplingInputs(noise=noise, face_latent=face, plan=plan, rotary=rotary)
    expected = denoise(tiny_dit, scheduler, inputs, generator=torch.Generator("cpu").manual_seed(seed))

    def predict(x_ve, sigma):  # what ComfyUI's v-prediction wrapper does around the DiT
        x_vp = vp_from_ve(x_ve, sigma).permute(0, 2, 1, 3, 4)
        velocity = tiny_dit(torch.cat([x_vp, face], dim=2), timestep=torch.tensor([timesteps[int((sigmas - sigma).abs().argmin())]]),
                            conditioning=tokens, image_rotary_emb=rotary).sample
        alpha = 1 / (1 + sigma**2)
        return (alpha**0.5 * x_vp - (1 - alpha) ** 0.5 * velocity).permute(0, 2, 1, 3, 4)

    start = ve_from_vp(noise.permute(0, 2, 1, 3, 4), sigmas[0])
    got = release_dpm_sample(predict, start, sigmas, timesteps, RELEASE_SCHEDULER_CONFIG,
                             generator=torch.Generator("cpu").manual_seed(seed))
    assert (got.permute(0, 2, 1, 3, 4) - expected).abs().max() < 1e-5


def _adapter():
    import comfy_harness as harness

    harness.load_pack()
    import importlib

    return importlib.import_module(f"{harness.PACK_NAME}.nodes.native_adapter")


def test_rotary_patch_gives_the_release_tables_for_the_patch_grid_core_asks_for(tiny_dit):
    """Core calls _get_rotary_emb(h, w, t) with the patch grid; the patch answers with the
    release's tables for that video (h*16 x w*16 pixels, (t-1)*4+1 frames)."""
    rotary = _adapter().ReleaseRotary(head_dim=16, patch_size=2)
    got = rotary(3, 5, 3, device="cpu")
    expected = rotary_embeddings(tiny_dit.config, height=48, width=80, num_frames=9)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_release_noise_is_the_pipelines_initial_noise_in_comfyui_layout():
    noise = _adapter().ReleaseNoise(42).generate_noise({"samples": torch.zeros(1, 4, 3, 6, 10)})
    expected = torch.randn((1, 3, 4, 6, 10), generator=torch.Generator("cpu").manual_seed(42))
    assert torch.equal(noise, expected.permute(0, 2, 1, 3, 4))


def test_a_model_that_does_not_name_its_file_gets_a_clear_message():
    class NotFromCoreLoader:
        cached_patcher_init = None

    with pytest.raises(InvalidInputError, match="Load Diffusion Model"):
        _adapter().model_file(NotFromCoreLoader())
