"""The nodes give the pipeline's numbers, and user errors reach ComfyUI as clear messages."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import comfy_harness as harness
from echovideo_core.errors import InvalidInputError, MissingModelFilesError
from echovideo_core.face.errors import NoFaceError
from echovideo_core.pipeline import EchoVideoPipeline
from echovideo_core.interchange import comfy_latent_samples
from echovideo_core.stages import branches_for
from nodes_fixtures import api_workflow, basic_run, tiny_kit  # noqa: F401 (fixtures)
from pipeline_kit import tiny_inputs
from stage_trace import stages_run_by


def node(name: str):
    return harness.load_pack().NODE_CLASS_MAPPINGS[name]()


def test_nodes_and_the_pipeline_run_the_same_stage_functions(tiny_kit):
    """One composition: the node graph and EchoVideoPipeline.__call__ go through stages.py."""
    workflow = api_workflow("echovideo_basic")
    by_nodes = stages_run_by(lambda: harness.run_workflow(workflow))
    pipe = EchoVideoPipeline.from_pretrained(tiny_kit / "echovideo" / "EchoVideo", torch_dtype=torch.float32)
    image, arcface = tiny_inputs(64)
    by_pipeline = stages_run_by(lambda: pipe(image, arcface, "a person", height=32, width=32, num_frames=1,
                                             num_inference_steps=1, decode_dtype=torch.float32))
    core = {"encode_text", "face_features", "fuse", "sample", "initial_noise", "face_latent", "denoise", "decode"}
    assert core <= by_pipeline and core <= by_nodes
    assert "encode_face" in by_nodes  # the node prepares a photo first, then runs face_features


def test_face_encode_without_rounding_gives_the_pipelines_float32_features(basic_run, tiny_kit):
    """numeric_mode=float32 keeps SigLIP pixels and ArcFace in float32, like the pipeline's switch."""
    face_models = basic_run["3"][0]
    photo = basic_run["4"][0]  # the workflow's Load Image output
    unrounded = node("EchoVideoFaceEncode").encode(face_models, photo, False, 0, "float32")[0]
    released = basic_run["5"][0]
    pipe = EchoVideoPipeline.from_pretrained(tiny_kit / "echovideo" / "EchoVideo", torch_dtype=torch.bfloat16)
    uncond, cond = pipe.face_features(unrounded.identity_image, unrounded.arcface, feature_rounding="float32")
    assert torch.equal(unrounded.cond.arcface, cond.arcface) and torch.equal(unrounded.cond.siglip, cond.siglip)
    assert not torch.equal(unrounded.cond.arcface, released.cond.arcface)  # as released rounds to bfloat16


@pytest.mark.parametrize("old, new", [("as_released", "bfloat16"), ("corrected", "float32")])
def test_face_encode_accepts_the_older_numeric_mode_values(basic_run, old, new):
    face_encode = node("EchoVideoFaceEncode")
    assert type(face_encode).VALIDATE_INPUTS(numeric_mode=old) is True
    legacy = face_encode.encode(basic_run["3"][0], basic_run["4"][0], False, 0, old)[0]
    current = face_encode.encode(basic_run["3"][0], basic_run["4"][0], False, 0, new)[0]
    assert torch.equal(legacy.cond.arcface, current.cond.arcface)


def test_an_unknown_widget_value_is_named_by_validation():
    message = type(node("EchoVideoSampler")).VALIDATE_INPUTS(dynamic_cfg="sometimes")
    assert "cfg_schedule must be one of timestep, step_index, constant" in message


def test_latent_output_uses_comfyui_video_axis_order(basic_run):
    samples = basic_run["8"][0]["samples"]
    inputs = api_workflow("echovideo_basic")["8"]["inputs"]
    assert tuple(samples.shape) == (1, 4, (inputs["frames"] - 1) // 4 + 1, inputs["height"] // 8, inputs["width"] // 8)


def test_identity_image_output_is_a_comfyui_image(basic_run):
    image = basic_run["5"][1]
    assert tuple(image.shape) == (1, 512, 512, 3) and image.dtype == torch.float32
    assert np.array_equal((image[0].numpy() * 255).round().astype(np.uint8), basic_run["5"][0].identity_image)


def test_fusion_holds_both_guidance_branches_and_cfg_one_keeps_only_the_conditional(basic_run):
    cond = basic_run["7"][0]
    assert cond.do_cfg and cond.tokens.shape[:2] == (2, 226)
    single = branches_for(cond, 1.0)
    assert not single.do_cfg and torch.equal(single.tokens, cond.tokens[1:])
    assert branches_for(cond, 6.0) is cond


def test_a_size_that_is_not_a_multiple_of_16_is_a_clear_error(basic_run):
    with pytest.raises(InvalidInputError, match="width must be a multiple of 16, got 100"):
        node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], width=100, height=64,
                                        frames=9, steps=1, cfg=6.0, dynamic_cfg="off", seed=0, scheduler="CogVideoXDPM")


def test_a_missing_model_names_the_folder_and_the_expected_files(tiny_kit):
    with pytest.raises(MissingModelFilesError) as err:
        node("EchoVideoModelLoader").load("NotThere", "(from model folder)", "bf16", "cpu", "default")
    message = str(err.value)
    assert str(tiny_kit / "echovideo") in message and "transformer/" in message and "diffusion_models" in message


def test_a_missing_t5_file_names_the_text_encoders_folder(tiny_kit):
    with pytest.raises(MissingModelFilesError, match="t5xxl_fp16.safetensors .*text_encoders"):
        node("EchoVideoTextEncoderLoader").load("t5_missing.safetensors", "bf16", "cpu")


def test_no_face_is_a_clear_error_unless_allowed(tiny_kit):
    loader = node("EchoVideoFaceModelsLoader")
    # the kit's RetinaFace fires on every photo: a parser without it beside turns the fallback off
    lone = tiny_kit / "facexlib" / "parser_only"
    lone.mkdir(exist_ok=True)
    (lone / "parsing_bisenet.pth").write_bytes((tiny_kit / "facexlib" / "parsing_bisenet.pth").read_bytes())
    face_models = loader.load("insightface/models/antelopev2", "facexlib/parser_only/parsing_bisenet.pth",
                              "echovideo/EchoVideo", "fp32")[0]
    blank = torch.full((1, 128, 128, 3), 0.5)
    with pytest.raises(NoFaceError, match="no face found"):
        node("EchoVideoFaceEncode").encode(face_models, blank, allow_no_face=False, face_index=0)
    _, _, report = node("EchoVideoFaceEncode").encode(face_models, blank, allow_no_face=True, face_index=0)
    assert report.startswith("face found by: whole_image")


def test_fp8_weight_storage_keeps_weights_in_8_bits_and_samples(basic_run, tiny_kit):
    model = node("EchoVideoModelLoader").load("EchoVideo", "(from model folder)", "bf16", "cpu", "fp8_e4m3fn")[0]
    weight = model.transformer.transformer_blocks[0].ff.net[2].weight
    assert weight.dtype == torch.float8_e4m3fn
    latent = node("EchoVideoSampler").sample(model, basic_run["7"][0], basic_run["5"][0], width=64, height=64, frames=1,
                                             steps=2, cfg=6.0, dynamic_cfg="off", seed=0, scheduler="CogVideoXDPM")[0]
    assert torch.isfinite(latent["samples"]).all()


def test_decode_rejects_a_latent_in_the_wrong_layout(basic_run):
    with pytest.raises(InvalidInputError, match="expected a video latent"):
        node("EchoVideoDecode").decode(basic_run["1"][0], {"samples": torch.zeros(1, 4, 8, 8)}, "fp32", False)


def test_decode_names_the_channel_counts_of_a_latent_from_another_vae(basic_run):
    """A core empty CogVideoX latent (16 channels) into the tiny kit's 4-channel VAE."""
    with pytest.raises(InvalidInputError, match="LATENT has 16 channels, this VAE's latents have 4"):
        node("EchoVideoDecode").decode(basic_run["1"][0], {"samples": torch.zeros(1, 16, 2, 8, 8)}, "fp32", False)


def test_sampler_latent_is_plain_vae_latents_and_decode_takes_them_back(basic_run):
    """One LATENT convention with core: the sampler's samples are the DiT's latents / 0.7 in
    (B, C, F', h, w); EchoVideo Decode of them equals decoding the DiT's latents directly."""
    from echovideo_core.decode import decode_latents

    model, samples = basic_run["1"][0], basic_run["8"][0]["samples"]
    dit_latents = samples.permute(0, 2, 1, 3, 4) * 0.7
    frames = node("EchoVideoDecode").decode(model, {"samples": samples}, "fp32", False)[0]
    direct = decode_latents(model.vae, dit_latents, dtype=torch.float32).frames
    assert torch.equal(frames, direct.reshape(-1, *direct.shape[2:]))



@pytest.mark.parametrize("cfg, dynamic_cfg", [(1.0, "off"), (4.5, "off"), (6.0, "as_released"), (4.5, "constant"),
                                             (6.0, "timestep")])
def test_sampler_node_maps_its_guidance_widgets_old_and_new_onto_the_pipelines_flags(basic_run, tiny_kit, cfg, dynamic_cfg):
    face, prompt = basic_run["5"][0], api_workflow("echovideo_basic")["6"]["inputs"]["prompt"]
    pipe = EchoVideoPipeline.from_pretrained(tiny_kit / "echovideo" / "EchoVideo", torch_dtype=torch.bfloat16)
    expected = pipe(face.identity_image, face.arcface, prompt, negative_prompt="", height=48, width=80, num_frames=5,
                    num_inference_steps=3, guidance_scale=cfg, use_dynamic_cfg=dynamic_cfg not in ("off", "constant"),
                    generator=torch.Generator("cpu").manual_seed(3), output_type="latent").latents
    latent = node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], face, width=80, height=48, frames=5,
                                             steps=3, cfg=cfg, dynamic_cfg=dynamic_cfg, seed=3, scheduler="CogVideoXDPM")[0]
    assert torch.equal(latent["samples"], comfy_latent_samples(expected.cpu(), 0.7))


def test_missing_face_models_name_the_folders_and_files(tiny_kit):
    with pytest.raises(MissingModelFilesError) as err:
        node("EchoVideoFaceModelsLoader").load("(none found)", "facexlib/parsing_bisenet.pth", "echovideo/EchoVideo", "fp32")
    assert "scrfd_10g_bnkps.onnx + glintr100.onnx" in str(err.value) and str(tiny_kit / "insightface") in str(err.value)
    with pytest.raises(MissingModelFilesError, match="parsing_bisenet.pth .*facexlib"):
        node("EchoVideoFaceModelsLoader").load("insightface/models/antelopev2", "facexlib/gone.pth", "echovideo/EchoVideo", "fp32")


def test_sampler_identity_inputs_reach_the_identity_controls(basic_run, tiny_kit):
    face, prompt = basic_run["5"][0], api_workflow("echovideo_basic")["6"]["inputs"]["prompt"]
    pipe = EchoVideoPipeline.from_pretrained(tiny_kit / "echovideo" / "EchoVideo", torch_dtype=torch.bfloat16)
    expected = pipe(face.identity_image, face.arcface, prompt, negative_prompt="", height=48, width=80, num_frames=5,
                    num_inference_steps=3, guidance_scale=6.0, identity_strength=0.5, identity_steps=(0, 700),
                    identity_guidance=2.0, generator=torch.Generator("cpu").manual_seed(3), output_type="latent").latents
    latent = node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], face, width=80, height=48, frames=5,
                                             steps=3, cfg=6.0, dynamic_cfg="timestep", seed=3, scheduler="CogVideoXDPM",
                                             identity_strength=0.5, identity_start=0, identity_end=700,
                                             identity_guidance=2.0)[0]
    assert torch.equal(latent["samples"], comfy_latent_samples(expected.cpu(), 0.7))


def test_block_swap_placement_samples_the_same_latents(basic_run, tiny_kit):
    swapped = node("EchoVideoModelLoader").load("EchoVideo", "(from model folder)", "bf16", "block_swap", "default",
                                                swap_blocks=1)[0]
    assert swapped.transformer._block_swap is not None
    args = dict(width=64, height=64, frames=1, steps=2, cfg=6.0, dynamic_cfg="timestep", seed=0, scheduler="CogVideoXDPM")
    latent = node("EchoVideoSampler").sample(swapped, basic_run["7"][0], basic_run["5"][0], **args)[0]
    resident = node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], **args)[0]
    assert torch.equal(latent["samples"], resident["samples"])


def test_sampler_speed_inputs_reach_the_speed_options(basic_run):
    """A cache at threshold 0 never skips (exact); sequential branches agree to float32 rounding."""
    args = dict(width=64, height=64, frames=1, steps=3, cfg=6.0, dynamic_cfg="timestep", seed=0, scheduler="CogVideoXDPM")
    sampler = node("EchoVideoSampler")
    plain = sampler.sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], **args)[0]["samples"]
    exact_cache = sampler.sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], **args, cache="teacache",
                                 cache_threshold=0.0)[0]["samples"]
    sequential = sampler.sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], **args,
                                guidance_branches="sequential")[0]["samples"]
    assert torch.equal(exact_cache, plain)
    torch.testing.assert_close(sequential, plain, atol=1e-5, rtol=0)


def test_the_t5_loader_stores_the_encoder_blocks_in_fp8_when_asked(tiny_kit):
    from echovideo_core.weights.fp8 import Fp8Linear

    bundle = node("EchoVideoTextEncoderLoader").load("EchoVideo", "fp32", "cpu", "fp8")[0]
    assert isinstance(bundle.model.encoder.block[0].layer[0].SelfAttention.q, Fp8Linear)


def test_the_t5_loader_names_a_storage_it_does_not_have(tiny_kit):
    with pytest.raises(InvalidInputError, match="weight_storage must be one of default, fp8, int8"):
        node("EchoVideoTextEncoderLoader").load("EchoVideo", "fp32", "cpu", "gguf-q4_k")


def test_sampler_magcache_reads_its_ratio_file_and_at_threshold_0_changes_nothing(basic_run, tmp_path):
    import dataclasses

    from acceleration_fixtures import tiny_dit
    from echovideo_core.acceleration.mag_ratios import write_mag_ratios

    two_blocks = dataclasses.replace(basic_run["1"][0], transformer=tiny_dit(2))  # MagCache caches blocks 2..N
    write_mag_ratios(tmp_path / "ratios.json", [1.0, 0.9, 0.8], steps=3)
    args = dict(width=64, height=64, frames=1, steps=3, cfg=6.0, dynamic_cfg="timestep", seed=0, scheduler="CogVideoXDPM")
    sampler = node("EchoVideoSampler")
    plain = sampler.sample(two_blocks, basic_run["7"][0], basic_run["5"][0], **args)[0]["samples"]
    cached = sampler.sample(two_blocks, basic_run["7"][0], basic_run["5"][0], **args, cache="magcache",
                            cache_threshold=0.0, mag_ratios_file=str(tmp_path / "ratios.json"))[0]["samples"]
    assert torch.equal(cached, plain)


def test_sampler_magcache_without_a_ratio_file_says_what_to_give(basic_run):
    args = dict(width=64, height=64, frames=1, steps=3, cfg=6.0, dynamic_cfg="timestep", seed=0, scheduler="CogVideoXDPM")
    with pytest.raises(InvalidInputError, match="mag_ratios_file.*--record-mag-ratios"):
        node("EchoVideoSampler").sample(basic_run["1"][0], basic_run["7"][0], basic_run["5"][0], **args,
                                        cache="magcache")
