"""Memory modes: `offload` = none | model | blocks:N | sequential changes where weights wait,
never the numbers (float32, CPU: bit-identical latents)."""
from __future__ import annotations

import copy

import pytest
import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.block_swap import block_swap_of, enable_block_swap
from echovideo_core.errors import InvalidInputError
from echovideo_core.placement import parse_offload, placement_for
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


def latents(offload: str) -> torch.Tensor:
    pipe = EchoVideoPipeline.from_pretrained(tiny_model_dir(), offload=offload, device="cpu")
    image, arcface = tiny_inputs()
    return pipe(image, arcface, **TINY_CALL, output_type="latent", generator=torch.Generator().manual_seed(2)).latents


@pytest.fixture(scope="module")
def resident() -> torch.Tensor:
    return latents("none")


@pytest.mark.parametrize("offload", ["model", "blocks:1", "sequential"])
def test_offload_modes_give_bit_identical_latents(resident, offload):
    assert torch.equal(latents(offload), resident)


def test_block_swap_hooks_exactly_the_first_n_blocks_and_keeps_them_on_the_offload_device(tiny_transformer):
    model = copy.deepcopy(tiny_transformer)
    swap = enable_block_swap(model, 1, "cpu", "cpu")
    assert block_swap_of(model) is swap and [b.module for b in swap.blocks] == [model.transformer_blocks[0]]
    hooked = [m for m in model.modules() if getattr(m, "_diffusers_hook", None) is not None]
    assert hooked == [model.transformer_blocks[0]]


def test_block_swap_of_more_blocks_than_the_model_has_says_so(tiny_transformer):
    blocks = len(tiny_transformer.transformer_blocks)
    with pytest.raises(InvalidInputError, match=rf"transformer's {blocks} blocks: N must be 1\.\.{blocks}, got 50"):
        enable_block_swap(copy.deepcopy(tiny_transformer), 50, "cpu", "cpu")


def test_an_unknown_offload_value_lists_the_valid_ones():
    with pytest.raises(InvalidInputError, match="offload must be one of none, model, blocks:N, sequential"):
        parse_offload("gpu")
    with pytest.raises(InvalidInputError, match="blocks:N"):
        parse_offload("blocks:many")


def test_offload_values_map_onto_placements():
    assert parse_offload("blocks:12") == ("block_swap", 12)
    assert placement_for("none", "cpu").mode == "cpu" and placement_for("model", "cpu").mode == "model_offload"
    assert placement_for("blocks:3", "cpu").swap_blocks == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none in CI)")
def test_on_a_gpu_swapped_blocks_wait_on_the_cpu_and_the_rest_on_the_gpu(tiny_transformer):
    model = copy.deepcopy(tiny_transformer)
    enable_block_swap(model, 1, "cuda", "cpu")
    assert model.transformer_blocks[0].norm1.linear.weight.device.type == "cpu"
    assert model.patch_embed.proj.weight.device.type == "cuda"


def test_freeing_the_encoders_keeps_the_numbers_and_drops_t5_and_siglip(resident):
    pipe = EchoVideoPipeline.from_pretrained(tiny_model_dir(), device="cpu")
    image, arcface = tiny_inputs()
    out = pipe(image, arcface, **TINY_CALL, output_type="latent", generator=torch.Generator().manual_seed(2),
               free_encoders=True)
    assert torch.equal(out.latents, resident)
    assert pipe.text_encoder is None and pipe.siglip is None


def test_a_pipeline_whose_encoders_were_freed_says_so_when_asked_to_encode():
    from echovideo_core.errors import MissingModelFilesError

    pipe = EchoVideoPipeline.from_pretrained(tiny_model_dir(), device="cpu").free_encoders()
    with pytest.raises(MissingModelFilesError, match="free_encoders"):
        pipe.encode_prompt("a person")
