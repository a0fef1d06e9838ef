"""Dynamic CFG: the release's timestep-value form and the corrected step-index form."""
from __future__ import annotations

import pytest

from echovideo_core.guidance import dynamic_cfg_scale, guidance_scales


def test_as_released_uses_the_timestep_value():
    assert guidance_scales(6.0, [999, 749, 499, 249], use_dynamic_cfg=True) == [
        4.755880591967707, 1.9379524472878416, 1.092153726377909, 1.0102866299659499]


def test_corrected_uses_the_step_index():
    scales = guidance_scales(6.0, [999, 749, 499, 249], use_dynamic_cfg=True, mode="corrected")
    assert scales == [dynamic_cfg_scale(6.0, i, 4) for i in range(4)]
    assert scales[0] == 7.0 and scales == sorted(scales, reverse=True)


def test_without_dynamic_cfg_every_step_uses_the_given_scale():
    assert guidance_scales(4.5, [999, 799, 599, 399, 199], use_dynamic_cfg=False) == [4.5] * 5


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode must be one of"):
        guidance_scales(6.0, [999], use_dynamic_cfg=True, mode="fast")
