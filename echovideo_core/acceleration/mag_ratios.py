"""MagCache's calibration as a file: written by one uncached run, read by the cached ones.

MagCache needs the magnitude ratios of this checkpoint at this sampler (none are published for
EchoVideo), so the command line makes them a file: `echovideo generate --record-mag-ratios F`
(an uncached run, which is a normal generation too) or `echovideo bench --cache magcache
--json F` (its baseline run) writes them under the key "mag_ratios"; `--mag-ratios F` reads
either file. diffusers' MagCache stretches the list to the run's step count, so one 50-step
calibration serves other step counts (less exactly).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from echovideo_core.errors import InputFileError, InvalidInputError
from echovideo_core.paths import check_input_file

KEY = "mag_ratios"


def read_mag_ratios(path: str | os.PathLike, argument: str = "--mag-ratios") -> list[float]:
    """The positive finite ratios under "mag_ratios" in `path`, or InputFileError naming it."""
    path = check_input_file(path, argument)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputFileError(f"{argument} {path} is not a valid JSON file ({err})", path=path) from None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # a bench JSON of several frame counts: the first one's calibration
    ratios = data.get(KEY) if isinstance(data, dict) else None
    if not isinstance(ratios, list) or not ratios or not all(
            isinstance(r, (int, float)) and not isinstance(r, bool) and math.isfinite(r) and r > 0 for r in ratios):
        raise InputFileError(f"{argument} {path} needs a non-empty list of positive numbers under {KEY!r} (written by "
                             "`echovideo generate --record-mag-ratios` or `echovideo bench --cache magcache --json`)",
                             path=path)
    return [float(r) for r in ratios]


def mag_ratio_record(ratios: Sequence[float], *, steps: int) -> dict:
    """What --record-mag-ratios writes: the ratios and the step count they were measured at."""
    return {KEY: [float(r) for r in ratios], "steps": int(steps)}


def write_mag_ratios(path: str | os.PathLike, ratios: Sequence[float], *, steps: int) -> None:
    from echovideo_core.atomic import write_json_atomic

    write_json_atomic(Path(path), mag_ratio_record(ratios, steps=steps))


def node_mag_ratios(cache: str, path: str) -> list[float] | None:
    """The Sampler node's `mag_ratios_file` widget: read only when its cache is magcache (the
    widget may keep a path while another cache is chosen)."""
    if cache != "magcache":
        return None
    if not path.strip():
        raise InvalidInputError("cache magcache needs mag_ratios_file: a JSON written by an uncached `python -m "
                                "echovideo_core generate ... --record-mag-ratios FILE`; or choose fbc / teacache")
    return read_mag_ratios(path.strip(), argument="mag_ratios_file")
