"""Resident memory of this process (Linux /proc; elsewhere the peak from getrusage).

The memory checks compare whole-process peaks (`VmHWM`: every resident page, anonymous and
file-backed, at its highest), as a user's task manager would show them. `reset_peak_rss`
starts a new peak (Linux clear_refs), so one process can measure a phase on its own.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import resource
import sys
from functools import lru_cache
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_bytes() -> int:
    """Highest resident set size of this process so far (since the last reset), in bytes."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return (kib or 0) * 1024


def reset_peak_rss() -> bool:
    """Make the peak equal to the current size (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def trim_heap() -> None:
    """Hand the C heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).

    Why: a loader that converts layer after layer frees working copies of a few MB between
    the tensors it keeps; glibc keeps such holes in its heap, and over 42 blocks they add up
    to more than a GB of resident memory nobody uses (measured). Trimming after each layer
    keeps the process at the size of what it holds.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
