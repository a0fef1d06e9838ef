"""docs/design.md sections 3-4: the transformer and IITF fusion match the release, stage by stage."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from conftest import skip_unless_kernels_match
from echovideo_core import rotary_embeddings

TOL = 1e-5


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="module")
def case(case_dir):
    return load_file(str(case_dir / "transformer_case.safetensors"))


def _rotary(model, case, case_meta, source: str):
    if source == "stored":
        return case["in.rotary_cos"], case["in.rotary_sin"]
    tc = case_meta["transformer_case"]
    height, width = tc["pixel_hw_for_rotary"]
    return rotary_embeddings(model.config, height=height, width=width, num_frames=tc["num_frames_for_rotary"])


def _run_with_captures(model, case, rotary):
    """One forward, capturing every intermediate the reference stores (hooks, no copies of code)."""
    captured: dict[str, torch.Tensor] = {}

    def keep(name, index=None):
        def hook(module, args, output):
            captured[name] = output if index is None else output[index]

        return hook

    handles = [
        model.face_prj_wofc.register_forward_hook(keep("mid.resampler_out")),
        # face_info_proj mixes tokens: its output is channel-major, the reference stores it token-major.
        model.face_info_proj.register_forward_hook(lambda m, a, o: captured.__setitem__("mid.face_info_proj_out", o.transpose(1, 2))),
        model.face_proj.register_forward_hook(keep("mid.face_proj_out")),
        model.time_embedding.register_forward_hook(keep("mid.time_embedding")),
        model.patch_embed.register_forward_hook(keep("mid.patch_embed_out")),
    ]
    for i, block in enumerate(model.transformer_blocks):
        handles.append(block.register_forward_hook(keep(f"mid.block{i}_video_out", 0)))
        handles.append(block.register_forward_hook(keep(f"mid.block{i}_text_out", 1)))
    try:
        with torch.no_grad():
            cond = model.fuse(case["in.encoder_hidden_states"], case["in.encoder_face_hidden_states"], case["in.arcface_embedding"])
            out = model(case["in.hidden_states"], timestep=case["in.timestep"], conditioning=cond, image_rotary_emb=rotary)
    finally:
        for handle in handles:
            handle.remove()
    captured["mid.fused_encoder_hidden_states"] = cond
    captured["out.sample"] = out.sample
    return captured


@pytest.mark.parametrize("rotary_source", ["computed", "stored"])
def test_every_stored_intermediate_matches_the_release(tiny_transformer, case, case_meta, rotary_source):
    captured = _run_with_captures(tiny_transformer, case, _rotary(tiny_transformer, case, case_meta, rotary_source))
    expected = sorted(k for k in case if k.startswith(("mid.", "out.")))
    assert set(expected) <= set(captured), f"not captured: {set(expected) - set(captured)}"
    failures = {k: _max_abs(captured[k], case[k]) for k in expected if _max_abs(captured[k], case[k]) > TOL}
    assert not failures, f"stages over {TOL} max-abs: {failures}"


def test_as_released_fusion_and_transformer_are_bit_exact_where_the_kernels_match(tiny_transformer, case, case_dir):
    """Same arithmetic as the release, layouts included (contiguous ArcFace rows and text_proj
    input): every stored intermediate at 0.0 on a machine whose kernels match the reference's."""
    skip_unless_kernels_match(case_dir)
    captured = _run_with_captures(tiny_transformer, case, (case["in.rotary_cos"], case["in.rotary_sin"]))
    differing = {k: _max_abs(captured[k], case[k]) for k in case if k.startswith(("mid.", "out."))
                 if not torch.equal(captured[k].float(), case[k].float())}
    assert not differing, f"not bit-exact: {differing}"


def test_arcface_vector_becomes_the_144_rows_the_release_feeds(case):
    from echovideo_core import ARCFACE_ROWS
    from echovideo_core.fusion import arcface_rows

    rows = arcface_rows(case["in.arcface_embedding"], ARCFACE_ROWS)
    assert torch.equal(rows, case["in.encoder_face_feats_hidden_states"])


def test_forward_does_not_recompute_the_fusion_when_given_conditioning(tiny_transformer, case, case_meta):
    calls = []
    handle = tiny_transformer.face_prj_wofc.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            cond = tiny_transformer.fuse(case["in.encoder_hidden_states"], case["in.encoder_face_hidden_states"], case["in.arcface_embedding"])
            rotary = _rotary(tiny_transformer, case, case_meta, "computed")
            for _ in range(3):
                tiny_transformer(case["in.hidden_states"], timestep=case["in.timestep"], conditioning=cond, image_rotary_emb=rotary)
    finally:
        handle.remove()
    assert len(calls) == 1


def test_fused_tokens_do_not_depend_on_the_timestep_or_latents(tiny_transformer, case, case_meta):
    """Fusing inside the forward (raw inputs) equals fusing once and passing `conditioning`."""
    rotary = _rotary(tiny_transformer, case, case_meta, "computed")
    with torch.no_grad():
        cond = tiny_transformer.fuse(case["in.encoder_hidden_states"], case["in.encoder_face_hidden_states"], case["in.arcface_embedding"])
        for t in (case["in.timestep"], torch.flip(case["in.timestep"], [0])):
            once = tiny_transformer(case["in.hidden_states"], timestep=t, conditioning=cond, image_rotary_emb=rotary).sample
            inside = tiny_transformer(
                case["in.hidden_states"], timestep=t, image_rotary_emb=rotary,
                text_embeds=case["in.encoder_hidden_states"], siglip_embeds=case["in.encoder_face_hidden_states"],
                arcface=case["in.arcface_embedding"],
            ).sample
            assert torch.equal(once, inside)


def test_forward_without_conditioning_or_raw_inputs_is_a_clear_error(tiny_transformer, case):
    with pytest.raises(ValueError, match="conditioning"):
        tiny_transformer(case["in.hidden_states"], timestep=case["in.timestep"])


def test_output_layout_is_batch_frames_out_channels_height_width(tiny_transformer, case):
    b, f, c2, h, w = case["in.hidden_states"].shape
    assert tuple(case["out.sample"].shape) == (b, f, tiny_transformer.config.out_channels, h, w)
