"""T5 in fp8 / int8: the encoder-block linears low-bit (except `wo`), built layer by layer."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from echovideo_core.errors import InvalidInputError
from echovideo_core.loading.text_encoder import load_t5 as load_text_encoder
from echovideo_core.tiny import write_tiny_model
from echovideo_core.weights.fp8 import Fp8Linear
from echovideo_core.weights.t5 import load_t5_in_format

# Largest |difference| of the tiny T5's last hidden state from float32 (values of order 1),
# computed in float32; measured fp8 0.103, int8 0.035 (docs/weights.md).
T5_BOUND = {"fp8": 0.25, "int8": 0.08}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("t5") / "model")


@pytest.fixture(scope="module")
def reference(tiny_root):
    model = load_text_encoder(tiny_root / "text_encoder", torch.float32)
    ids = torch.randint(2, 180, (1, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return ids, model(ids).last_hidden_state


def test_fp8_keeps_encoder_linears_in_fp8_except_the_feed_forward_output(tiny_root):
    model = load_t5_in_format(tiny_root, "fp8")
    block = model.encoder.block[0]
    assert isinstance(block.layer[0].SelfAttention.q, Fp8Linear)
    assert isinstance(block.layer[1].DenseReluDense.wi_0, Fp8Linear)
    wo = block.layer[1].DenseReluDense.wo  # T5 casts its input to this weight's dtype
    assert type(wo) is nn.Linear and wo.weight.dtype == torch.bfloat16
    assert model.shared.weight.dtype == torch.bfloat16 and model.shared.weight is model.encoder.embed_tokens.weight


@pytest.mark.parametrize("weights", ["fp8", "int8"])
def test_low_bit_t5_stays_within_its_bound(tiny_root, reference, weights):
    ids, expected = reference
    model = load_t5_in_format(tiny_root, weights, compute_dtype=torch.float32)
    with torch.no_grad():
        got = model(ids).last_hidden_state
    assert float((got - expected).abs().max()) < T5_BOUND[weights]


def test_fp32_t5_equals_the_folder_loader(tiny_root, reference):
    ids, expected = reference
    with torch.no_grad():
        got = load_t5_in_format(tiny_root / "text_encoder", "fp32")(ids).last_hidden_state
    assert torch.allclose(got, expected, atol=1e-5)  # attention kernels differ (sdpa vs eager)


def test_a_full_t5_file_with_a_decoder_and_prefixed_keys_loads(tmp_path, tiny_root, reference):
    model = load_text_encoder(tiny_root / "text_encoder", torch.float32)
    state = {f"text_encoders.t5xxl.transformer.{k}": v for k, v in model.state_dict().items() if k != "shared.weight"}
    state["text_encoders.t5xxl.transformer.decoder.block.0.layer.0.SelfAttention.q.weight"] = torch.zeros(8, 32)
    save_file(state, str(tmp_path / "t5xxl.safetensors"))
    loaded = load_t5_in_format(tmp_path / "t5xxl.safetensors", "bf16")
    assert torch.equal(loaded.shared.weight, model.shared.weight.to(torch.bfloat16))


def test_t5_weights_name_the_valid_ones(tiny_root):
    with pytest.raises(InvalidInputError, match="unknown T5 weights 'gguf-q4_k': choose one of bf16, fp16, fp32, fp8, int8"):
        load_t5_in_format(tiny_root, "gguf-q4_k")
