"""GGUF blocks in torch: decoding matches the gguf package bit for bit; our encoder's error."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from echovideo_core.weights.formats import weights_format
from echovideo_core.weights.kquants import Q4_K, Q5_K, Q8_0, dequantize, quantize
from echovideo_core.weights.stored import StoredTensor, store

# Relative RMS error of our encoders on N(0, 1) rows (measured 0.0054 / 0.038 / 0.079).
RELATIVE_RMS_BOUND = {Q8_0: 0.008, Q5_K: 0.05, Q4_K: 0.1}


def _weight(rows: int = 24, columns: int = 512) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(rows, columns, generator=generator) * 0.05 + 0.01


@pytest.mark.parametrize("qtype", [Q8_0, Q5_K, Q4_K], ids=lambda q: q.name)
def test_our_decoder_matches_the_gguf_package_bit_for_bit(qtype):
    blocks = quantize(_weight(), qtype)
    ours = dequantize(blocks, qtype, (24, 512))
    package = torch.from_numpy(gguf_quants.dequantize(blocks.numpy(), qtype))
    assert torch.equal(ours, package)


@pytest.mark.parametrize("qtype", [Q8_0, Q5_K, Q4_K], ids=lambda q: q.name)
def test_encoding_error_is_within_the_documented_bound(qtype):
    weight = torch.randn(64, 1024, generator=torch.Generator().manual_seed(1))
    decoded = dequantize(quantize(weight, qtype), qtype, tuple(weight.shape))
    relative_rms = float(((decoded - weight) ** 2).mean().sqrt() / weight.std())
    assert relative_rms < RELATIVE_RMS_BOUND[qtype]


def test_decoding_in_chunks_gives_the_same_values():
    blocks = quantize(_weight(), Q4_K)
    assert torch.equal(dequantize(blocks, Q4_K, (24, 512), chunk_values=256),
                       dequantize(blocks, Q4_K, (24, 512)))


def test_decoding_into_bf16_rounds_the_float32_values_once():
    blocks = quantize(_weight(), Q5_K)
    assert torch.equal(dequantize(blocks, Q5_K, (24, 512), torch.bfloat16),
                       dequantize(blocks, Q5_K, (24, 512)).to(torch.bfloat16))


def test_other_block_types_decode_through_the_package():
    weight = _weight()
    blocks = gguf_quants.quantize(weight.numpy(), GGMLQuantizationType.Q4_0)
    decoded = dequantize(torch.from_numpy(blocks), GGMLQuantizationType.Q4_0, (24, 512))
    assert np.array_equal(decoded.numpy(), gguf_quants.dequantize(blocks, GGMLQuantizationType.Q4_0))


def test_k_quant_rows_must_split_into_blocks_of_256():
    with pytest.raises(ValueError, match="Q4_K blocks of 256"):
        quantize(torch.zeros(4, 96), Q4_K)


def test_rows_that_do_not_fit_k_quants_fall_back_to_q8_0_and_then_to_floats():
    q4_k = weights_format("gguf-q4_k")
    assert store(StoredTensor.plain(torch.ones(4, 64)), q4_k).qtype == Q8_0
    kept = store(StoredTensor.plain(torch.ones(4, 20)), q4_k)
    assert kept.encoding == "float" and kept.data.dtype == torch.bfloat16
