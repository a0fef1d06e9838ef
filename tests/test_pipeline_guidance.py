"""Dynamic CFG: the release's timestep-value form, the step-index form and a constant scale."""
from __future__ import annotations

import pytest

from echovideo_core.errors import InvalidInputError
from echovideo_core.guidance import dynamic_cfg_scale, guidance_scales, uses_guidance
from echovideo_core.numerics import Numerics, cfg_schedule_from, feature_rounding_from, numerics_for


def test_timestep_schedule_uses_the_timestep_value_as_released():
    assert guidance_scales(6.0, [999, 749, 499, 249], "timestep") == [
        4.755880591967707, 1.9379524472878416, 1.092153726377909, 1.0102866299659499]


def test_step_index_schedule_uses_the_step_index():
    scales = guidance_scales(6.0, [999, 749, 499, 249], "step_index")
    assert scales == [dynamic_cfg_scale(6.0, i, 4) for i in range(4)]
    assert scales[0] == 7.0 and scales == sorted(scales, reverse=True)


def test_constant_schedule_uses_the_given_scale_at_every_step():
    assert guidance_scales(4.5, [999, 799, 599, 399, 199], "constant") == [4.5] * 5


def test_unknown_schedule_is_rejected_naming_the_choices():
    with pytest.raises(InvalidInputError, match="cfg_schedule must be one of timestep, step_index, constant"):
        guidance_scales(6.0, [999], "fast")


def test_guidance_runs_only_above_one():
    assert uses_guidance(6.0) and uses_guidance(1.01)
    assert not uses_guidance(1.0) and not uses_guidance(0.0)


def test_mode_presets_set_both_switches():
    assert numerics_for("as_released") == Numerics("bfloat16", "timestep")
    assert numerics_for("corrected") == Numerics("float32", "step_index")


def test_a_switch_given_beside_a_preset_overrides_it():
    assert numerics_for("as_released", cfg_schedule="constant") == Numerics("bfloat16", "constant")
    assert numerics_for("corrected", feature_rounding="bfloat16") == Numerics("bfloat16", "step_index")


def test_unknown_mode_is_rejected():
    with pytest.raises(InvalidInputError, match="mode must be one of"):
        numerics_for("fast")


def test_older_spellings_map_onto_the_vocabulary():
    assert [cfg_schedule_from(v) for v in ("as_released", "corrected", "off")] == ["timestep", "step_index", "constant"]
    assert [feature_rounding_from(v) for v in ("as_released", "corrected")] == ["bfloat16", "float32"]
