"""Single files users already keep for other models: T5 (fp16 / fp8 / scaled fp8) from
models/text_encoders and a CogVideoX VAE from models/vae load directly."""
from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX
from safetensors.torch import save_file
from transformers import T5Config, T5EncoderModel

from echovideo_core.loading.state_dict import save_with_config
from echovideo_core.loading.text_encoder import load_t5 as load_t5_encoder_file
from echovideo_core.loading.vae import load_vae, vae_config_from_state_dict
from echovideo_core.errors import MissingModelFilesError
from echovideo_core.loading import CheckpointMismatchError
from echovideo_core.tiny import TINY_T5, TINY_VAE
from nodes_fixtures import tiny_kit  # noqa: F401 (fixture)

IDS = torch.tensor([[5, 6, 7, 8, 1, 0, 0, 0]])


@pytest.fixture(scope="module")
def t5() -> T5EncoderModel:
    torch.manual_seed(0)
    return T5EncoderModel(T5Config(**TINY_T5)).eval()


def comfy_layout(model: T5EncoderModel, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """As ComfyUI's t5xxl files: `shared.weight` + `encoder.*`, no tied copy, no config."""
    return {k: v.detach().clone().to(dtype) for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}


def test_t5_single_file_in_comfyui_layout_loads_with_config_from_shapes(t5, tmp_path):
    save_file(comfy_layout(t5, torch.float16), str(tmp_path / "t5xxl_fp16.safetensors"))
    loaded = load_t5_encoder_file(tmp_path / "t5xxl_fp16.safetensors", torch.float32)
    assert (loaded.config.d_model, loaded.config.num_layers, loaded.config.num_heads, loaded.config.d_kv) == (32, 1, 2, 8)
    config = T5Config(**TINY_T5)
    config._attn_implementation = "eager"  # as every T5 the library loads: the release's attention
    expected = T5EncoderModel(config).eval()
    expected.load_state_dict({k: v.half().float() for k, v in t5.state_dict().items()})
    with torch.no_grad():
        assert torch.equal(loaded(IDS)[0], expected(IDS)[0])


def test_scaled_fp8_t5_file_is_dequantized_with_its_scales(t5, tmp_path):
    state = comfy_layout(t5, torch.float32)
    scaled = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}
    for key, value in state.items():
        if key.endswith("q.weight"):
            scale = value.abs().max() / 448.0
            scaled[key] = (value / scale).to(torch.float8_e4m3fn)
            scaled[key[: -len("weight")] + "scale_weight"] = scale.reshape(1)
        else:
            scaled[key] = value
    save_file(scaled, str(tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors"))
    loaded = load_t5_encoder_file(tmp_path / "t5xxl_fp8_e4m3fn_scaled.safetensors", torch.float32)
    q = loaded.encoder.block[0].layer[0].SelfAttention.q.weight
    reference = t5.encoder.block[0].layer[0].SelfAttention.q.weight
    assert (q - reference).abs().max() <= 0.07 * reference.abs().max()


def test_a_file_that_is_not_t5_names_the_missing_tensor(tmp_path):
    save_file({"foo.weight": torch.zeros(2, 2)}, str(tmp_path / "not_t5.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="not a T5 v1.1 encoder checkpoint: no tensor shared.weight"):
        load_t5_encoder_file(tmp_path / "not_t5.safetensors")


def test_vae_file_with_config_metadata_loads_exactly(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**TINY_VAE).eval()
    save_with_config(vae, dict(vae.config), tmp_path / "vae.safetensors")
    loaded = load_vae(tmp_path / "vae.safetensors")
    assert loaded.config.norm_num_groups == 4 and loaded.config.scaling_factor == 0.7
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), loaded.state_dict().values()))


def test_vae_file_without_config_gets_its_architecture_from_the_shapes(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(block_out_channels=(32, 32, 64, 64), latent_channels=4, layers_per_block=1,
                                 norm_num_groups=32, use_quant_conv=False, use_post_quant_conv=False)
    save_file({k: v.clone() for k, v in vae.state_dict().items()}, str(tmp_path / "cogvideox_vae.safetensors"))
    config = vae_config_from_state_dict(vae.state_dict())
    assert (config["block_out_channels"], config["latent_channels"], config["layers_per_block"]) == ((32, 32, 64, 64), 4, 1)
    loaded = load_vae(tmp_path / "cogvideox_vae.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), loaded.state_dict().values()))


def test_vae_file_with_foreign_keys_is_rejected_naming_them(tmp_path):
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**TINY_VAE)
    state = {k: v.clone() for k, v in vae.state_dict().items()}
    state["extra.weight"] = torch.zeros(1)
    save_with_config(vae, dict(vae.config), tmp_path / "vae.safetensors")
    from echovideo_core.loading.state_dict import CONFIG_METADATA_KEY
    import json
    save_file(state, str(tmp_path / "vae_extra.safetensors"),
              metadata={CONFIG_METADATA_KEY: json.dumps({k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in dict(vae.config).items() if not k.startswith("_")})})
    with pytest.raises(CheckpointMismatchError, match="unexpected 1: extra.weight"):
        load_vae(tmp_path / "vae_extra.safetensors")


def test_model_loader_takes_a_single_transformer_file_and_a_vae_file(tiny_kit, tmp_path, monkeypatch):
    from comfy_harness import load_pack
    from echovideo_core.loading import load_transformer, save_single_file

    folder = tiny_kit / "echovideo" / "EchoVideo"
    (tmp_path / "diffusion_models").mkdir()
    save_single_file(load_transformer(folder / "transformer"), tmp_path / "diffusion_models" / "echovideo_dit.safetensors")
    vae = load_vae(folder / "vae")
    save_with_config(vae, dict(vae.config), tmp_path / "vae" / "cogvideox_vae.safetensors")
    monkeypatch.setenv("ECHOVIDEO_COMFY_MODELS", str(tmp_path))
    loader = load_pack().NODE_CLASS_MAPPINGS["EchoVideoModelLoader"]()
    spec = loader.INPUT_TYPES()["required"]
    assert spec["model"][0] == ["echovideo_dit.safetensors"] and "cogvideox_vae.safetensors" in spec["vae"][0]
    model = loader.load("echovideo_dit.safetensors", "cogvideox_vae.safetensors", "fp32", "cpu", "default")[0]
    assert model.scheduler.config.prediction_type == "v_prediction" and model.vae.config.latent_channels == 4
    with pytest.raises(MissingModelFilesError, match="no VAE: .*pick a CogVideoX VAE file"):
        loader.load("echovideo_dit.safetensors", "(from model folder)", "fp32", "cpu", "default")


def test_model_loader_merges_a_lora_from_models_loras_with_its_strength(tiny_kit, tmp_path, monkeypatch):
    import shutil

    import torch

    from comfy_harness import load_pack
    from echovideo_core.lora import save_lora

    shutil.copytree(tiny_kit / "echovideo", tmp_path / "echovideo")
    (tmp_path / "loras").mkdir()
    monkeypatch.setenv("ECHOVIDEO_COMFY_MODELS", str(tmp_path))
    loader = load_pack().NODE_CLASS_MAPPINGS["EchoVideoModelLoader"]()
    base = loader.load("EchoVideo", "(from model folder)", "fp32", "cpu", "default")[0].transformer
    weight = base.transformer_blocks[0].attn1.to_q.weight
    a, b = torch.ones(1, weight.shape[1]), torch.ones(weight.shape[0], 1)
    save_lora({"transformer_blocks.0.attn1.to_q.lora_A.weight": a, "transformer_blocks.0.attn1.to_q.lora_B.weight": b},
              tmp_path / "loras" / "tiny_style.safetensors", rank=1, alpha=1.0)
    assert loader.INPUT_TYPES()["optional"]["lora"][0] == ["none", "tiny_style.safetensors"]
    merged = loader.load("EchoVideo", "(from model folder)", "fp32", "cpu", "default", "tiny_style.safetensors", 0.5)[0]
    assert torch.allclose(merged.transformer.transformer_blocks[0].attn1.to_q.weight, weight + 0.5)
    assert torch.equal(base.transformer_blocks[0].attn1.to_q.weight, weight)  # the earlier load is untouched
    with pytest.raises(MissingModelFilesError, match="LoRA 'gone.safetensors' not found"):
        loader.load("EchoVideo", "(from model folder)", "fp32", "cpu", "default", "gone.safetensors", 1.0)
