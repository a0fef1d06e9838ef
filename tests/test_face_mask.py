"""Masking with the 19-class parsing (docs/design.md 5.5)."""
from __future__ import annotations

import numpy as np
import pytest

from echovideo_core.face.mask import KEPT_CLASSES, REMOVED_CLASSES, colorize_parsing, mask_identity


def test_removed_classes_are_exactly_the_spec_list():
    assert REMOVED_CLASSES == {0, 7, 8, 9, 14, 15, 16, 18}
    assert KEPT_CLASSES == {1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 17}


def test_synthetic_map_with_all_19_classes_keeps_exactly_the_kept_set():
    parsing = np.tile(np.arange(19)[:, None], (1, 32))  # row i has class i
    aligned = np.random.default_rng(0).integers(1, 256, (19, 32, 3), dtype=np.uint8)
    identity = mask_identity(aligned, parsing)
    for cls in range(19):
        row = identity[cls]
        if cls in KEPT_CLASSES:
            np.testing.assert_array_equal(row, aligned[cls])
        else:
            assert not row.any(), f"class {cls} should be painted black"


def test_mask_identity_leaves_its_input_untouched():
    aligned = np.full((512, 512, 3), 200, np.uint8)
    mask_identity(aligned, np.zeros((512, 512), np.int64))
    assert (aligned == 200).all()


def test_mask_identity_rejects_mismatched_sizes_and_float_maps():
    aligned = np.zeros((512, 512, 3), np.uint8)
    with pytest.raises(ValueError, match="differ in size"):
        mask_identity(aligned, np.zeros((256, 256), np.int64))
    with pytest.raises(ValueError, match="integer class map"):
        mask_identity(aligned, np.zeros((512, 512), np.float32))


def test_colorize_parsing_gives_one_colour_per_class():
    colours = colorize_parsing(np.arange(19)[None, :])[0]
    assert len({tuple(c) for c in colours}) == 19
