"""Issue 3 item 5: loading real checkpoints offline, with a strict check that names keys."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from echovideo_core import CheckpointMismatchError, load_transformer
from echovideo_core.loading import infer_config, save_single_file
from echovideo_core.testing.weight_recipe import recipe_tensors


@pytest.fixture(scope="module")
def tiny_full_state(case_dir):
    """Stored tensors + recipe tensors: the whole tiny state dict, and its config."""
    folder = case_dir / "pipeline" / "transformer"
    state = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    state.update(recipe_tensors(folder / "face_prj_wofc_recipe.json"))
    return state, json.loads((folder / "config.json").read_text())


def _same_weights(model, state) -> bool:
    ours = model.state_dict()
    return set(ours) == set(state) and all(torch.equal(ours[k].float(), state[k].float()) for k in state)


def test_released_folder_loads_with_every_tensor_in_place(tiny_transformer, tiny_full_state):
    assert _same_weights(tiny_transformer, tiny_full_state[0])


def test_sharded_folder_with_index_loads(tmp_path, tiny_full_state):
    state, config = tiny_full_state
    keys = list(state)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": keys[::2], "diffusion_pytorch_model-00002-of-00002.safetensors": keys[1::2]}
    weight_map = {}
    for name, shard_keys in shards.items():
        save_file({k: state[k] for k in shard_keys}, str(tmp_path / name))
        weight_map.update({k: name for k in shard_keys})
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert _same_weights(load_transformer(tmp_path), state)


def test_whole_pipeline_folder_finds_its_transformer_subfolder(tmp_path, tiny_full_state):
    state, config = tiny_full_state
    (tmp_path / "transformer").mkdir()
    save_file(state, str(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors"))
    (tmp_path / "transformer" / "config.json").write_text(json.dumps(config))
    assert _same_weights(load_transformer(tmp_path), state)


def test_single_file_with_embedded_config_round_trips(tmp_path, tiny_transformer, tiny_full_state):
    path = save_single_file(tiny_transformer, tmp_path / "echovideo.safetensors")
    assert _same_weights(load_transformer(path), tiny_full_state[0])


def test_single_file_without_config_gets_it_from_the_shapes(tmp_path, tiny_full_state):
    state, config = tiny_full_state
    path = tmp_path / "bare.safetensors"
    save_file(state, str(path))
    model = load_transformer(path)
    for name in ("num_layers", "num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "text_embed_dim", "time_embed_dim"):
        assert model.config[name] == config[name], name
    assert _same_weights(model, state)


def test_single_file_with_a_comfyui_prefix_loads(tmp_path, tiny_full_state):
    state, _ = tiny_full_state
    path = tmp_path / "prefixed.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in state.items()}, str(path))
    assert _same_weights(load_transformer(path), state)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_weights_are_cast_to_the_requested_dtype_on_load(case_dir, dtype):
    folder = case_dir / "pipeline" / "transformer"
    model = load_transformer(folder, torch_dtype=dtype, extra_tensors=recipe_tensors(folder / "face_prj_wofc_recipe.json"))
    assert {p.dtype for p in model.parameters()} == {dtype}


def _save_variant(tmp_path, state, config, change):
    folder = tmp_path / "variant"
    folder.mkdir()
    variant = dict(state)
    change(variant)
    save_file(variant, str(folder / "diffusion_pytorch_model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_missing_key_is_named_in_the_error(tmp_path, tiny_full_state):
    folder = _save_variant(tmp_path, *tiny_full_state, lambda s: s.pop("norm_final.bias"))
    with pytest.raises(CheckpointMismatchError, match=r"missing 1: norm_final\.bias"):
        load_transformer(folder)


def test_unexpected_key_is_named_in_the_error(tmp_path, tiny_full_state):
    folder = _save_variant(tmp_path, *tiny_full_state, lambda s: s.__setitem__("extra.weight", torch.zeros(2)))
    with pytest.raises(CheckpointMismatchError, match=r"unexpected 1: extra\.weight"):
        load_transformer(folder)


def test_wrong_shaped_key_is_named_with_both_shapes(tmp_path, tiny_full_state):
    folder = _save_variant(tmp_path, *tiny_full_state, lambda s: s.__setitem__("proj_out.bias", torch.zeros(3)))
    with pytest.raises(CheckpointMismatchError, match=r"wrong shape 1: proj_out\.bias \(checkpoint \[3\] vs model \[16\]\)"):
        load_transformer(folder)


def test_missing_path_names_the_path_and_what_to_put_there(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*transformer/"):
        load_transformer(tmp_path / "nowhere")


def test_folder_without_weights_says_which_files_it_expects(tmp_path):
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model.safetensors"):
        load_transformer(tmp_path)


def test_corrupt_safetensors_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointMismatchError, match="not a readable safetensors file"):
        load_transformer(path)


def test_pickle_checkpoints_load_only_with_weights_only(tmp_path, tiny_full_state):
    """A .pth holding an arbitrary object is refused (weights_only=True), tensors load."""
    state, config = tiny_full_state
    good = tmp_path / "good.pth"
    torch.save(state, good)
    assert _same_weights(load_transformer(good, config=config), state)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "bad.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        load_transformer(bad, config=config)


def test_infer_config_rejects_a_state_dict_that_is_not_echovideo():
    with pytest.raises(CheckpointMismatchError, match="not an EchoVideo transformer"):
        infer_config({"foo": torch.zeros(1)})
