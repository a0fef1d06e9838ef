"""fp8 storage: one float32 scale per tensor, ComfyUI's scaled-fp8 files load, compute in bf16."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from echovideo_core.weights.fp8 import FP8_DTYPE, FP8_MAX, Fp8Linear, dequantize_fp8, quantize_fp8
from echovideo_core.weights.transformer import load_transformer_in_format
from weights_fixtures import tiny_weights  # noqa: F401  (fixture)


def test_the_scale_maps_the_largest_magnitude_to_448():
    weight = torch.tensor([[0.5, -2.0], [1.0, 0.25]])
    stored, scale = quantize_fp8(weight)
    assert stored.dtype == FP8_DTYPE and scale.dtype == torch.float32 and scale.shape == ()
    assert float(scale) == pytest.approx(2.0 / FP8_MAX)
    assert float(stored.float().abs().max()) == FP8_MAX


def test_an_all_zero_tensor_gets_scale_one():
    stored, scale = quantize_fp8(torch.zeros(3, 4))
    assert float(scale) == 1.0 and not stored.float().any()


def test_chunked_conversion_gives_the_same_bytes():
    weight = torch.randn(64, 96, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    one, _ = quantize_fp8(weight)
    chunked, _ = quantize_fp8(weight, chunk_values=100)
    assert torch.equal(one.view(torch.uint8), chunked.view(torch.uint8))


def test_fp8_linear_computes_with_the_dequantised_weight_in_bf16():
    weight = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    stored, scale = quantize_fp8(weight)
    layer = Fp8Linear(stored, scale, torch.ones(8), torch.bfloat16)
    x = torch.randn(2, 16, dtype=torch.bfloat16)
    expected = torch.nn.functional.linear(x, dequantize_fp8(stored, scale, torch.bfloat16), torch.ones(8, dtype=torch.bfloat16))
    assert layer(x).dtype == torch.bfloat16 and torch.equal(layer(x), expected)
    assert set(layer.state_dict()) == {"weight", "scale_weight", "bias"}


def _comfy_scaled_file(path, source, scale_name: str = "scale_weight", prefix: str = "model.diffusion_model."):
    """A file in ComfyUI's scaled-fp8 layout: prefixed keys, marker, fp8 block linears with
    scales, activation scales, everything else bf16."""
    tensors = {f"{prefix}scaled_fp8": torch.empty(0, dtype=FP8_DTYPE)}
    expected = {}
    for key in source.shapes():
        value = source.read(key).data
        if key.startswith("transformer_blocks.") and key.endswith(".weight") and value.ndim == 2:
            stored, scale = quantize_fp8(value)
            layer = key[: -len(".weight")]
            tensors[f"{prefix}{key}"], tensors[f"{prefix}{layer}.{scale_name}"] = stored, scale
            tensors[f"{prefix}{layer}.scale_input"] = torch.ones(())
            expected[key] = (stored, scale)
        else:
            tensors[f"{prefix}{key}"] = value
    save_file(tensors, str(path))
    return expected


@pytest.mark.parametrize("scale_name", ["scale_weight", "weight_scale"])
def test_a_comfyui_scaled_fp8_file_loads_as_fp8_with_its_bytes_unchanged(tmp_path, tiny_weights, scale_name):
    expected = _comfy_scaled_file(tmp_path / "echovideo_fp8_scaled.safetensors", tiny_weights, scale_name)
    model = load_transformer_in_format(tmp_path / "echovideo_fp8_scaled.safetensors")  # as stored: fp8
    layers = dict(model.named_modules())
    for key, (stored, scale) in expected.items():
        layer = layers[key[: -len(".weight")]]
        assert isinstance(layer, Fp8Linear), key
        assert torch.equal(layer.weight.view(torch.uint8), stored.view(torch.uint8)) and torch.equal(layer.scale_weight, scale)


def test_a_scaled_fp8_file_asked_for_as_bf16_is_dequantised(tmp_path, tiny_weights):
    expected = _comfy_scaled_file(tmp_path / "f.safetensors", tiny_weights, prefix="")
    model = load_transformer_in_format(tmp_path / "f.safetensors", "bf16")
    key, (stored, scale) = next(iter(expected.items()))
    assert torch.equal(model.state_dict()[key], dequantize_fp8(stored, scale, torch.bfloat16))
