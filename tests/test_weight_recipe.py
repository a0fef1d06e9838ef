"""Reference README, "Tiny transformer weights": the hashinit recipe reproduces the release's tensors."""
from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from echovideo_core.testing.weight_recipe import key_seed, recipe_base, recipe_tensors, recipe_values, sha256_f32le

TAG = "echovideo-parity-A"


def test_seed_and_first_values_of_the_resampler_queries():
    assert key_seed(TAG, "face_prj_wofc.latents") == 4197348180
    values = recipe_values(TAG, "face_prj_wofc.latents", (1, 16, 1024), 0.0).ravel()[:3].tolist()
    assert values == [-0.03197968006134033, -0.040435075759887695, -0.004122614860534668]


def test_layernorm_weights_have_base_one():
    assert key_seed(TAG, "face_prj_wofc.norm_out.weight") == 3611244395
    assert recipe_values(TAG, "face_prj_wofc.norm_out.weight", (768,), 1.0)[0] == pytest.approx(0.9401674270629883, abs=0)


def test_every_rebuilt_resampler_tensor_matches_its_sha256(case_dir):
    recipe_file = case_dir / "pipeline" / "transformer" / "face_prj_wofc_recipe.json"
    recipe = json.loads(recipe_file.read_text())
    tensors = recipe_tensors(recipe_file, verify=False)
    assert len(tensors) == len(recipe["tensors"])
    for entry in recipe["tensors"]:
        assert sha256_f32le(tensors[entry["key"]]) == entry["sha256_f32le"], entry["key"]


def test_recipe_reproduces_every_stored_tensor_exactly(case_dir):
    """The stored tensors follow the same recipe: a check of the recipe code on known data."""
    folder = case_dir / "pipeline" / "transformer"
    recipe = json.loads((folder / "face_prj_wofc_recipe.json").read_text())
    stored = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    for key, digest in recipe["stored_tensors_sha256_f32le"].items():
        values = recipe_values(recipe["tag"], key, tuple(stored[key].shape), recipe_base(recipe, key))
        assert sha256_f32le(values) == digest == sha256_f32le(stored[key]), key


def test_a_tampered_checksum_is_refused(tmp_path, case_dir):
    recipe = json.loads((case_dir / "pipeline" / "transformer" / "face_prj_wofc_recipe.json").read_text())
    recipe["tensors"] = recipe["tensors"][:1]
    recipe["tensors"][0]["sha256_f32le"] = "0" * 64
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    with pytest.raises(ValueError, match="SHA-256"):
        recipe_tensors(path)
