"""The two numeric switches of a run, in one vocabulary, and the `mode` presets.

The release has two quirks that change its numbers; each is a switch of its own:

- `feature_rounding`: "bfloat16" (as released: the SigLIP pixel values and the ArcFace
  vector are rounded to bfloat16 inside an otherwise float32 run) or "float32" (no rounding).
- `cfg_schedule`: how the guidance scale moves over the steps. "timestep" (as released: the
  dynamic-CFG formula evaluated at the timestep value 999, 749, ..., which makes the scales
  pseudo-random), "step_index" (the same formula at the step index 0..N-1, the smooth ramp
  it was written for) or "constant" (the guidance scale at every step).

`mode` is a preset of both: "as_released" = (bfloat16, timestep), the default everywhere;
"corrected" = (float32, step_index). Older spellings (the sampler node's "as_released" /
"corrected" / "off", Face Encode's "as_released" / "corrected") are read through
`LEGACY_CFG_SCHEDULES` / `LEGACY_FEATURE_ROUNDINGS`, so saved workflows keep loading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from echovideo_core.errors import InvalidInputError

FeatureRounding = Literal["bfloat16", "float32"]
CfgSchedule = Literal["timestep", "step_index", "constant"]
FEATURE_ROUNDINGS: tuple[str, ...] = ("bfloat16", "float32")
CFG_SCHEDULES: tuple[str, ...] = ("timestep", "step_index", "constant")
LEGACY_FEATURE_ROUNDINGS: dict[str, str] = {"as_released": "bfloat16", "corrected": "float32"}
LEGACY_CFG_SCHEDULES: dict[str, str] = {"as_released": "timestep", "corrected": "step_index", "off": "constant"}


def _check(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise InvalidInputError(f"{name} must be one of {', '.join(valid)}; got {value!r}")


@dataclass(frozen=True)
class Numerics:
    """The two switches; see the module docstring. Defaults: the release's numbers."""

    feature_rounding: FeatureRounding = "bfloat16"
    cfg_schedule: CfgSchedule = "timestep"

    def __post_init__(self) -> None:
        _check("feature_rounding", self.feature_rounding, FEATURE_ROUNDINGS)
        _check("cfg_schedule", self.cfg_schedule, CFG_SCHEDULES)

    @property
    def rounds_features(self) -> bool:
        return self.feature_rounding == "bfloat16"


PRESETS: dict[str, Numerics] = {
    "as_released": Numerics("bfloat16", "timestep"),
    "corrected": Numerics("float32", "step_index"),
}
MODES: tuple[str, ...] = tuple(PRESETS)


def numerics_for(mode: str = "as_released", *, feature_rounding: str | None = None,
                 cfg_schedule: str | None = None) -> Numerics:
    """The preset `mode`, with either switch overridden when given."""
    _check("mode", mode, MODES)
    preset = PRESETS[mode]
    return Numerics(feature_rounding=feature_rounding or preset.feature_rounding,
                    cfg_schedule=cfg_schedule or preset.cfg_schedule)


def feature_rounding_from(value: str) -> FeatureRounding:
    """A feature-rounding value, older spellings accepted."""
    value = LEGACY_FEATURE_ROUNDINGS.get(value, value)
    _check("feature_rounding", value, FEATURE_ROUNDINGS)
    return value  # type: ignore[return-value]


def cfg_schedule_from(value: str) -> CfgSchedule:
    """A CFG-schedule value, older spellings accepted."""
    value = LEGACY_CFG_SCHEDULES.get(value, value)
    _check("cfg_schedule", value, CFG_SCHEDULES)
    return value  # type: ignore[return-value]
