"""The speed options' command-line spellings: what is accepted, and the one line for a mistake."""
from __future__ import annotations

import pytest

from echovideo_core.acceleration import CacheSpec, SpeedOptionError, SpeedOptions, parse_attention, parse_cache
from echovideo_core.acceleration.options import DEFAULT_THRESHOLDS, parse_parallel


def test_cache_spellings_give_kind_and_threshold():
    assert parse_cache("none") == CacheSpec()
    assert parse_cache("fbc:0.08") == CacheSpec("fbc", 0.08)
    assert parse_cache("TeaCache:0") == CacheSpec("teacache", 0.0)
    assert parse_cache("magcache") == CacheSpec("magcache", DEFAULT_THRESHOLDS["magcache"])


@pytest.mark.parametrize("text", ["fbc:-1", "fbc:x", "lru:0.1", "none:0.1", "fbc:inf"])
def test_a_bad_cache_spelling_names_the_flag(text):
    with pytest.raises(SpeedOptionError, match="--cache"):
        parse_cache(text)


def test_unknown_backend_and_parallel_mode_name_their_flags():
    assert parse_attention("SAGE") == "sage"
    with pytest.raises(SpeedOptionError, match="--attention"):
        parse_attention("xformers")
    with pytest.raises(SpeedOptionError, match="--parallel"):
        parse_parallel("ring")


def test_a_cache_with_sequence_parallel_is_refused():
    with pytest.raises(SpeedOptionError, match="cannot run with --parallel ulysses"):
        SpeedOptions(cache=parse_cache("fbc"), parallel="ulysses")


def test_label_names_only_what_differs_from_the_plain_run():
    assert SpeedOptions().label() == "baseline"
    assert SpeedOptions(cache=parse_cache("fbc:0.1"), compile=True).label() == "cache=fbc:0.1,compile"
