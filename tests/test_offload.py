"""Sequential offload (diffusers leaf-level group offloading) changes where weights wait, not the numbers."""
from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file

from echovideo_core import rotary_embeddings


def _forward(model, case, case_meta):
    tc = case_meta["transformer_case"]
    h, w = tc["pixel_hw_for_rotary"]
    device = model.device
    rotary = tuple(t.to(device) for t in rotary_embeddings(model.config, height=h, width=w, num_frames=tc["num_frames_for_rotary"]))
    with torch.no_grad():
        cond = model.fuse(*(case[k].to(device) for k in ("in.encoder_hidden_states", "in.encoder_face_hidden_states", "in.arcface_embedding")))
        return model(case["in.hidden_states"].to(device), timestep=case["in.timestep"].to(device), conditioning=cond,
                     image_rotary_emb=rotary).sample.cpu()


@pytest.fixture(scope="module")
def case(case_dir):
    return load_file(str(case_dir / "transformer_case.safetensors"))


def test_every_module_owning_weights_gets_an_offload_hook_and_outputs_are_unchanged(tiny_transformer, case, case_meta):
    """Also the resampler, whose query tokens are its own parameter (not a leaf layer's)."""
    offloaded = copy.deepcopy(tiny_transformer)
    offloaded.enable_sequential_offload("cpu", "cpu")
    owners = [m for m in offloaded.modules() if list(m.parameters(recurse=False))]
    assert offloaded.face_prj_wofc in owners
    assert all(getattr(m, "_diffusers_hook", None) is not None for m in owners)
    assert offloaded.device == torch.device("cpu")
    assert torch.equal(_forward(offloaded, case, case_meta), _forward(tiny_transformer, case, case_meta))


def test_sequential_offload_placement_keeps_other_models_moving_whole(tiny_transformer):
    from echovideo_core.placement import Placement, running_on

    placement = Placement.create("sequential_offload", "cpu")
    assert placement.storage_device == torch.device("cpu")
    offloaded = copy.deepcopy(tiny_transformer)
    offloaded.enable_sequential_offload("cpu", "cpu")
    with running_on(offloaded, placement, lambda n, d: pytest.fail("a layer-offloaded DiT is never moved whole")):
        pass
    moved = []
    with running_on(torch.nn.Linear(2, 2), placement, lambda n, d: moved.append(n)):
        pass
    assert moved == [6 * 4]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none in CI)")
def test_on_a_gpu_weights_wait_on_the_cpu_and_outputs_match(tiny_transformer, case, case_meta):
    offloaded = copy.deepcopy(tiny_transformer)
    offloaded.enable_sequential_offload("cuda", "cpu")
    out = _forward(offloaded, case, case_meta)
    assert all(p.device.type == "cpu" for p in offloaded.parameters())
    assert (out - _forward(tiny_transformer, case, case_meta)).abs().max() < 1e-4
