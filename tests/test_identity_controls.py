"""Identity controls (identity.py): off by default, strength 0 is the text-only model, a
window over every timestep is no window, and the third guidance branch combines as documented."""
from __future__ import annotations

import pytest
import torch

from echovideo_core import EchoVideoPipeline
from echovideo_core.errors import InvalidInputError
from echovideo_core.identity import IdentityControls, parse_identity_steps
from echovideo_core.sampling import GuidancePlan
from pipeline_kit import TINY_CALL, tiny_inputs, tiny_model_dir


@pytest.fixture(scope="module")
def pipe():
    return EchoVideoPipeline.from_pretrained(tiny_model_dir())


def run(pipe, arcface=None, **controls):
    image, vector = tiny_inputs()
    return pipe(image, vector if arcface is None else arcface, **TINY_CALL, guidance_scale=6.0, output_type="latent",
                generator=torch.Generator().manual_seed(4), **controls).latents


@pytest.fixture(scope="module")
def default(pipe):
    return run(pipe)


def test_controls_at_their_defaults_give_the_release_latents(pipe, default):
    assert torch.equal(run(pipe, identity_strength=1.0, identity_steps=None, identity_guidance=None), default)


def test_a_window_over_every_timestep_equals_no_window(pipe, default):
    assert torch.equal(run(pipe, identity_steps=(0, 1000)), default)
    assert torch.equal(run(pipe, identity_steps=(0, 999)), default)  # every timestep of the run is <= 999


def test_strength_zero_gives_the_text_only_model(pipe):
    """With strength 0 the ArcFace vector no longer matters: the face reaches the DiT only
    through the face latent (the shallow path), as in the text-only model."""
    _, arcface = tiny_inputs()
    assert torch.equal(run(pipe, identity_strength=0.0), run(pipe, arcface=-arcface, identity_strength=0.0))
    assert not torch.equal(run(pipe), run(pipe, arcface=-arcface))


def test_a_window_that_excludes_every_step_is_the_text_only_model(pipe):
    assert torch.equal(run(pipe, identity_steps=(0, 10)), run(pipe, identity_strength=0.0))


def test_strength_changes_the_result_monotonically_away_from_text_only(pipe, default):
    text_only = run(pipe, identity_strength=0.0)
    half = run(pipe, identity_strength=0.5)
    assert (half - text_only).abs().max() < (default - text_only).abs().max()


def test_identity_guidance_combines_three_branches_as_documented():
    uncond, text, face = torch.randn(3, 1, 2, 3)
    plan = GuidancePlan(conditioning=torch.zeros(2, 1, 1), guidance=[4.0], do_cfg=True,
                        text_only=torch.zeros(1, 1, 1), identity_scale=2.5)
    combined = plan.combine(torch.cat([uncond, text, face])[:, None].reshape(3, 2, 3), 0)
    torch.testing.assert_close(combined, uncond + 4.0 * (text - uncond) + 2.5 * (face - text))


def test_identity_guidance_runs_a_third_branch(pipe):
    batches = []
    handle = pipe.transformer.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    try:
        run(pipe, identity_guidance=2.0)
    finally:
        handle.remove()
    assert set(batches) == {3}


@pytest.mark.parametrize("controls, message", [
    (dict(identity_strength=float("nan")), "identity strength must be a finite number"),
    (dict(identity_steps=(600, 100)), "0 <= A <= B <= 1000"),
    (dict(identity_guidance=-1.0), "identity guidance must be a finite number >= 0"),
])
def test_invalid_controls_are_named_before_any_work(pipe, controls, message):
    with pytest.raises(InvalidInputError, match=message):
        run(pipe, **controls)


def test_the_cli_form_of_the_window_is_a_colon_pair():
    assert parse_identity_steps("0:600") == (0, 600)
    with pytest.raises(InvalidInputError, match="A:B"):
        parse_identity_steps("600")


def test_default_controls_are_inactive():
    assert not IdentityControls().active and not IdentityControls(steps=(0, 1000)).active
