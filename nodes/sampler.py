"""EchoVideo Sampler: fused conditioning + face latent -> video latents (LATENT).

LATENT: {"samples": (B, C, F', H/8, W/8) float32}, ComfyUI's convention: plain VAE latents in
its video axis order (core VAE Decode, TrimVideoLatent, latent upscales take it), F' = (frames - 1) / 4 + 1.
"""
from __future__ import annotations

from echovideo_core.acceleration.mag_ratios import node_mag_ratios
from echovideo_core.acceleration.options import ATTENTION_BACKENDS, GUIDANCE_BRANCHES, node_speed_options as speed_options
from echovideo_core.identity import IdentityControls
from echovideo_core.interchange import comfy_latent_samples
from echovideo_core.numerics import CFG_SCHEDULES, cfg_schedule_from
from echovideo_core.sampling import SCHEDULER_ALIASES, SamplingSettings
from echovideo_core.stages import sample, seeded_generator

from . import comfy_adapter as comfy

CFG_TIP = ("Guidance schedule. timestep: the release's dynamic CFG (evaluated at the timestep value, pseudo-random "
           "scales); step_index: the same formula at the step index (a smooth ramp); constant: cfg at every step.")


class EchoVideoSampler:
    CATEGORY = "EchoVideo"
    DESCRIPTION = "Denoises a video of the encoded person (CogVideoX sampler, classifier-free guidance, the face latent at every step)."
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Video latents (B, C, F', H/8, W/8), plain VAE latents: EchoVideo Decode or core VAE Decode.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("ECHO_MODEL", {"tooltip": "From Load EchoVideo Model."}),
            "conditioning": ("ECHO_COND", {"tooltip": "From EchoVideo IITF Fuse."}),
            "face": ("ECHO_FACE", {"tooltip": "The same face: its image is VAE-encoded into the face latent."}),
            "width": ("INT", {"default": 848, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 848, 640, 480."}),
            "height": ("INT", {"default": 480, "min": 16, "max": 2048, "step": 16, "tooltip": "Multiple of 16; trained: 480, 640, 848."}),
            "frames": ("INT", {"default": 49, "min": 1, "max": 49, "step": 4, "tooltip": "4k+1 frames, at most 49 (about 3 s at 16 fps)."}),
            "steps": ("INT", {"default": 50, "min": 1, "max": 500, "tooltip": "Denoising steps."}),
            "cfg": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 30.0, "step": 0.1, "round": 0.01, "tooltip": "Guidance scale; 1 or less turns guidance off."}),
            "dynamic_cfg": (list(CFG_SCHEDULES), {"default": "timestep", "tooltip": CFG_TIP}),
            "seed": ("INT", {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True, "tooltip": "Same seed and settings give the same video."}),
            "scheduler": (list(SCHEDULER_ALIASES), {"default": "CogVideoXDPM", "tooltip": "CogVideoXDPM: the release's sampler (2nd-order DPM, v-prediction); CogVideoXDDIM: first-order DDIM, no noise draws."}),
        }, "optional": {
            "identity_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 3.0, "step": 0.05, "tooltip": "The face's share of the fused tokens: 1 as released, 0 text only, above 1 stronger identity (may look pasted)."}),
            "identity_start": ("INT", {"default": 0, "min": 0, "max": 1000, "tooltip": "Lowest timestep (0..1000) at which the face conditioning applies; 0 = to the end."}),
            "identity_end": ("INT", {"default": 1000, "min": 0, "max": 1000, "tooltip": "Highest timestep at which it applies; lower it (e.g. 600) to leave the first, layout-setting steps to the prompt (more motion)."}),
            "identity_guidance": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 30.0, "step": 0.1, "tooltip": "0 = off. Otherwise a separate identity guidance scale: a third, text-only branch per step (1.5x the time)."}),
            "cache": (["none", "fbc", "teacache", "magcache"], {"default": "none", "tooltip": "Step cache: skip transformer blocks on steps that barely change (faster, approximate). fbc: first-block cache; teacache: TeaCache with CogVideoX-5B's coefficients; magcache: MagCache, needs mag_ratios_file."}),
            "cache_threshold": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01, "tooltip": "Skip threshold; negative = the cache's default (fbc 0.05, teacache 0.15, magcache 0.06); 0 never skips (exact). Higher: faster, further from the uncached video."}),
            "guidance_branches": (list(GUIDANCE_BRANCHES), {"default": "batched", "tooltip": "batched: both guidance branches in one batch (fastest); sequential: one after the other (about half the activation memory, same video to float32 rounding)."}),
            "attention": (list(ATTENTION_BACKENDS), {"default": "sdpa", "tooltip": "Attention kernel: sdpa (PyTorch), sage / flash when installed (CUDA)."}),
            "compile": ("BOOLEAN", {"default": False, "tooltip": "torch.compile each transformer block: the first run pays the compilation, later steps are faster."}),
            "mag_ratios_file": ("STRING", {"default": "", "tooltip": "With cache magcache: the JSON of MagCache's ratios for this model and step count, written by an uncached `python -m echovideo_core generate ... --record-mag-ratios FILE` (or `echovideo bench --cache magcache --json FILE`)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, dynamic_cfg="timestep"):
        return comfy.valid_choice(cfg_schedule_from, dynamic_cfg)  # older workflows: as_released / corrected / off

    def sample(self, model, conditioning, face, width, height, frames, steps, cfg, dynamic_cfg, seed, scheduler,
               identity_strength=1.0, identity_start=0, identity_end=1000, identity_guidance=0.0, cache="none",
               cache_threshold=-1.0, guidance_branches="batched", attention="sdpa", compile=False, mag_ratios_file=""):
        settings = SamplingSettings(height=height, width=width, num_frames=frames, num_inference_steps=steps,
                                    guidance_scale=cfg, cfg_schedule=cfg_schedule_from(dynamic_cfg), scheduler=scheduler)
        identity = IdentityControls(strength=identity_strength, steps=(identity_start, identity_end),
                                    guidance=identity_guidance or None)
        latents = sample(model, conditioning, face.identity_image, settings, generator=seeded_generator(seed),
                         on_step=comfy.step_callback(steps), make_room=comfy.make_room, identity=identity,
                         speed=speed_options(cache, cache_threshold, guidance_branches, attention, compile),
                         mag_ratios=node_mag_ratios(cache, mag_ratios_file), check=comfy.check_interrupt)
        comfy.release_cache()
        return ({"samples": comfy_latent_samples(latents, model.vae.config.scaling_factor)},)


NODE_CLASS_MAPPINGS = {"EchoVideoSampler": EchoVideoSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"EchoVideoSampler": "EchoVideo Sampler"}
