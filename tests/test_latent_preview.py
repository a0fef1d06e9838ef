"""The step preview is an RGB picture for any latent channel count (the tiny kit has 4)."""
import pytest
import torch

from echovideo_core.interchange import latent_preview


@pytest.mark.parametrize("channels", [3, 4, 5, 16])
def test_preview_has_three_colour_channels_for_any_channel_count(channels):
    picture = latent_preview(torch.randn(1, 2, channels, 6, 10))
    assert picture.shape == (6, 10, 3)
    assert torch.isfinite(picture).all() and picture.abs().max() <= 1
