"""Runs inside ComfyUI's interpreter (cwd = a ComfyUI tree, argv: MODELS_DIR SIZES...): the
native path with core's own loaders, CFGGuider and samplers on the native kit, against
echovideo_core's pipeline on the same weights; prints one JSON line of measured numbers.

SIZES are HxW (e.g. 48x80). Used by tests/test_comfyui_native_live.py; not a test itself.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

PACK = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PACK), "."]
torch.set_num_threads(1)

models, sizes = Path(sys.argv[1]), sys.argv[2:]
sys.argv = [sys.argv[0], "--cpu"]  # ComfyUI's own argument parser reads these

import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()

import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402

from echovideo_core.loading.vae import load_vae  # noqa: E402
from echovideo_core.loading.scheduler import RELEASE_SCHEDULER_CONFIG  # noqa: E402
from echovideo_core.decode import decode_latents  # noqa: E402
from echovideo_core.loading.siglip import load_siglip  # noqa: E402
from echovideo_core.loading import load_transformer  # noqa: E402
from echovideo_core.pipeline import EchoVideoPipeline  # noqa: E402
from echovideo_core.stages import FaceEncoding  # noqa: E402
from echovideo_core.testing.native_kit import write_native_kit  # noqa: E402
from nodes import native_adapter as native  # noqa: E402

from diffusers import CogVideoXDPMScheduler  # noqa: E402
from transformers import T5EncoderModel, T5Tokenizer  # noqa: E402

FRAMES, STEPS, CFG, SEED = 9, 4, 6.0, 42
kit = write_native_kit(models)
released = models / "echovideo" / "EchoVideo"
pipe = EchoVideoPipeline(
    transformer=load_transformer(kit.transformer), vae=load_vae(kit.vae),
    text_encoder=T5EncoderModel.from_pretrained(released / "text_encoder").eval(),
    tokenizer=T5Tokenizer.from_pretrained(released / "tokenizer"),
    scheduler=CogVideoXDPMScheduler.from_config({k: v for k, v in RELEASE_SCHEDULER_CONFIG.items() if not k.startswith("_")}),
    siglip=load_siglip(released / "clip_visual_encoder"))
rng = np.random.default_rng(0)
image = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
arcface = rng.standard_normal(512).astype(np.float32)
uncond, cond = pipe.face_features(image, arcface)
face = FaceEncoding(identity_image=image, arcface=arcface, cond=cond, uncond=uncond, method="test", warnings=())
negative, positive = pipe.encode_prompt("A woman smiles and waves at the camera.", "")

model = comfy.sd.load_diffusion_model(str(kit.transformer))
vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(kit.vae)))
report: dict = {"model_class": type(model.model.model_config).__name__,
                "core_latent_scale": model.model.latent_format.scale_factor, "sizes": {}}


def native_run(height: int, width: int, sampler, *, dynamic: bool = True, steps: int = STEPS):
    patched, pos, neg, latent = native.apply_identity(
        model, [[positive.embeds, {}]], [[negative.embeds, {}]], face, vae, width=width, height=height,
        length=FRAMES, seed=SEED)
    guided = native.with_dynamic_cfg(patched, "timestep") if dynamic else patched
    guider = comfy.samplers.CFGGuider(guided)
    guider.set_conds(pos, neg)
    guider.set_cfg(CFG)
    sigmas = native.release_sigmas(patched, steps)
    noise = native.ReleaseNoise(SEED).generate_noise(latent)
    return guider.sample(noise, latent["samples"], sampler, sigmas, seed=SEED), pos


for size in sizes:
    height, width = (int(v) for v in size.split("x"))
    expected = pipe(image, arcface, "A woman smiles and waves at the camera.", negative_prompt="", height=height,
                    width=width, num_frames=FRAMES, num_inference_steps=STEPS, guidance_scale=CFG, use_dynamic_cfg=True,
                    generator=torch.Generator("cpu").manual_seed(SEED), output_type="latent").latents
    samples, pos = native_run(height, width, native.release_dpm_sampler())
    dit_space = samples.float().permute(0, 2, 1, 3, 4) * 0.7
    generator = torch.Generator("cpu").manual_seed(SEED)
    pipe.initial_noise(height, width, FRAMES, generator)
    face_latent = pipe.face_latent(image, height, width, FRAMES, generator).latents
    concat = pos[0][1]["concat_latent_image"].permute(0, 2, 1, 3, 4) * 0.7
    entry = {"max_abs_diff_final_latents": float((dit_space - expected).abs().max()),
             "max_abs_latent": float(expected.abs().max()),
             "max_abs_diff_face_latent": float((concat - face_latent).abs().max())}
    for name in ("euler", "dpmpp_2m"):
        other, _ = native_run(height, width, comfy.samplers.sampler_object(name), dynamic=False, steps=8)
        entry[f"{name}_finite"] = bool(torch.isfinite(other).all())
        entry[f"{name}_max_abs"] = float(other.abs().max())
    report["sizes"][size] = entry

# Core VAE Decode on the pack sampler's LATENT (plain latents) vs EchoVideo's decode, float32.
plain = expected.permute(0, 2, 1, 3, 4) / 0.7
with torch.no_grad():
    core_frames = vae.decode(plain).float()  # (B, F, H, W, 3) in [0, 1]
ours = decode_latents(pipe.vae, expected, dtype=torch.float32).frames
report["vae_decode"] = {"core_shape": list(core_frames.shape), "ours_shape": list(ours.shape),
                        "max_abs_diff": float((core_frames.reshape(ours.shape) - ours).abs().max())}
one = expected[:, :1]  # one latent frame: core decodes it in one piece, as diffusers does
with torch.no_grad():
    core_one = vae.decode(one.permute(0, 2, 1, 3, 4) / 0.7).float()
ours_one = decode_latents(pipe.vae, one, dtype=torch.float32).frames
report["vae_decode_one_frame"] = {"max_abs_diff": float((core_one.reshape(ours_one.shape) - ours_one).abs().max())}
with torch.no_grad():  # core's VAE decoding all latent frames in one piece (its batched path) instead of rolling
    whole = vae.first_stage_model._decode_batched(plain.to(vae.vae_dtype))
whole = (whole.float().clamp(-1, 1) + 1) / 2
report["vae_decode"]["core_in_one_piece_max_abs_diff"] = float((whole.permute(0, 2, 3, 4, 1) - ours).abs().max())
print(json.dumps(report))
