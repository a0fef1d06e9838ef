"""The sampling scheduler's settings: the folder's `scheduler_config.json`, else the release's."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from echovideo_core.loading.state_dict import read_json

logger = logging.getLogger(__name__)

# The release's scheduler settings (CogVideoX-5B), used when a single transformer file comes
# without a scheduler/ folder; both samplers (DPM and DDIM) read these.
RELEASE_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "clip_sample_range": 1.0, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True, "sample_max_value": 1.0, "set_alpha_to_one": True,
    "snr_shift_scale": 1.0, "steps_offset": 0, "timestep_spacing": "trailing", "trained_betas": None,
}


def load_scheduler_config(*folders: str | Path | None) -> dict[str, Any]:
    """Settings from the first of `folders` holding `scheduler_config.json` (a `scheduler/`
    folder, or a released root holding one), else the release's; keys starting with "_" are
    dropped."""
    candidates = [Path(f) / name for f in folders if f is not None
                  for name in ("scheduler_config.json", "scheduler/scheduler_config.json")]
    config_file = next((f for f in candidates if f.is_file()), None)
    if config_file is None:
        logger.info("no scheduler/scheduler_config.json beside the model: using the release's scheduler settings")
        return dict(RELEASE_SCHEDULER_CONFIG)
    return {k: v for k, v in read_json(config_file).items() if not k.startswith("_")}
