"""`echovideo convert`: fp8 (ComfyUI scaled layout) and GGUF files, IITF layers in bf16,
streamed, atomic, never over a user's file without --overwrite."""
from __future__ import annotations

import json

import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader
from safetensors import safe_open

from echovideo_core.cli import main
from echovideo_core.errors import InvalidInputError
from echovideo_core.errors import CheckpointMismatchError
from echovideo_core.testing.full_size import write_random_transformer
from echovideo_core.tiny import TINY_TRANSFORMER
from echovideo_core.weights.convert import convert_transformer
from echovideo_core.weights.formats import weights_format
from echovideo_core.weights.gguf_files import GGUFSource
from echovideo_core.weights.gguf_linear import GGUFLinear
from echovideo_core.weights.transformer import load_transformer_in_format, transformer_from_source
from weights_fixtures import IITF_PREFIXES, tiny_folder, tiny_weights, without  # noqa: F401  (fixtures)


def test_fp8_file_has_the_comfyui_scaled_layout_and_our_config(tmp_path, tiny_folder):
    out = convert_transformer(tiny_folder, "fp8", tmp_path / "echovideo_fp8_scaled.safetensors").out
    with safe_open(str(out), "pt") as handle:
        keys = set(handle.keys())
        assert handle.get_tensor("scaled_fp8").dtype == torch.float8_e4m3fn
        q = handle.get_tensor("transformer_blocks.0.attn1.to_q.weight")
        scale = handle.get_tensor("transformer_blocks.0.attn1.to_q.scale_weight")
        iitf = {k: handle.get_tensor(k).dtype for k in keys if k.startswith(IITF_PREFIXES)}
        config = json.loads(handle.metadata()["echovideo_config"])
    assert q.dtype == torch.float8_e4m3fn and scale.dtype == torch.float32 and scale.shape == ()
    assert iitf and set(iitf.values()) == {torch.bfloat16}
    assert config["num_layers"] == TINY_TRANSFORMER["num_layers"]


def test_loading_the_fp8_file_equals_loading_the_folder_as_fp8(tmp_path, tiny_folder):
    out = convert_transformer(tiny_folder, "fp8", tmp_path / "f.safetensors").out
    from_file = load_transformer_in_format(out).state_dict()  # as stored: fp8
    direct = load_transformer_in_format(tiny_folder, "fp8").state_dict()
    assert set(from_file) == set(direct)
    assert all(torch.equal(from_file[k].view(torch.uint8), direct[k].view(torch.uint8)) if from_file[k].dtype == torch.float8_e4m3fn
               else torch.equal(from_file[k], direct[k]) for k in direct)


@pytest.mark.parametrize("target, qtype", [("gguf-q8_0", "Q8_0"), ("gguf-q5_k", "Q8_0"), ("gguf-q4_k", "Q8_0")])
def test_gguf_file_holds_the_config_blocks_and_bf16_iitf_layers(tmp_path, tiny_folder, target, qtype):
    # the tiny model's rows are 32 wide: K-quant layers fall back to Q8_0 (see stored.gguf_type_for)
    out = convert_transformer(tiny_folder, target, tmp_path / "e.gguf").out
    reader = GGUFReader(out)
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert reader.fields["general.architecture"].contents() == "echovideo"
    assert json.loads(reader.fields["echovideo.config"].contents())["num_layers"] == TINY_TRANSFORMER["num_layers"]
    assert types["transformer_blocks.0.ff.net.2.weight"] == GGMLQuantizationType[qtype]
    assert {types[k] for k in types if k.startswith(IITF_PREFIXES)} == {GGMLQuantizationType.BF16}
    model = load_transformer_in_format(out)
    assert type(model.transformer_blocks[0].ff.net[2]).__name__ == "GGUFLinear"


def test_gguf_k_quant_file_of_a_256_wide_model(tmp_path):
    config = {**TINY_TRANSFORMER, "num_attention_heads": 4, "attention_head_dim": 64, "text_embed_dim": 256,
              "time_embed_dim": 256}
    folder = write_random_transformer(tmp_path / "transformer", config=config, seed=1)
    out = convert_transformer(folder, "gguf-q4_k", tmp_path / "q4.gguf").out
    types = {t.name: t.tensor_type for t in GGUFReader(out).tensors}
    assert types["transformer_blocks.0.attn1.to_q.weight"] == GGMLQuantizationType.Q4_K
    from_file = load_transformer_in_format(out).transformer_blocks[0].attn1.to_q
    direct = load_transformer_in_format(folder, "gguf-q4_k").transformer_blocks[0].attn1.to_q
    assert torch.equal(from_file.weight, direct.weight)


def test_our_single_file_converts_too(tmp_path, tiny_weights):
    single = write_random_transformer(tmp_path / "echovideo.safetensors", config=TINY_TRANSFORMER, seed=3)
    out = convert_transformer(single, "gguf-q8_0", tmp_path / "e.gguf").out
    assert load_transformer_in_format(out).config.num_layers == TINY_TRANSFORMER["num_layers"]


def test_an_existing_output_is_refused_without_overwrite(tmp_path, tiny_folder):
    out = tmp_path / "mine.safetensors"
    out.write_text("a user's file")
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_transformer(tiny_folder, "fp8", out)
    assert out.read_text() == "a user's file"
    convert_transformer(tiny_folder, "fp8", out, overwrite=True)
    assert out.stat().st_size > 1000


def test_the_output_suffix_must_match_the_target(tmp_path, tiny_folder):
    with pytest.raises(InvalidInputError, match=r"gguf-q4_k file must end in \.gguf"):
        convert_transformer(tiny_folder, "gguf-q4_k", tmp_path / "e.safetensors")


def test_a_source_without_iitf_layers_is_refused_and_nothing_is_written(tmp_path, tiny_weights):
    from echovideo_core.weights.convert import convert_source
    from echovideo_core.weights.sources import StateDictSource

    tensors = without({k: tiny_weights.read(k).data for k in tiny_weights.shapes()}, IITF_PREFIXES)
    source = StateDictSource(tensors, description="cogvideox")
    with pytest.raises(CheckpointMismatchError, match=r"missing 57: face_proj\.weight"):
        convert_source(source, weights_format("fp8"), tmp_path / "out.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_the_command_writes_the_file_and_says_so(tmp_path, tiny_folder, capsys):
    out = tmp_path / "e.gguf"
    assert main(["convert", "--model", str(tiny_folder), "--to", "gguf-q8_0", "--out", str(out)]) == 0
    assert f"wrote {out}: gguf-q8_0" in capsys.readouterr().out
    assert isinstance(transformer_from_source(GGUFSource(out)).transformer_blocks[0].ff.net[2], GGUFLinear)


def test_the_command_lists_the_targets_for_an_unknown_one(tmp_path, tiny_folder, capsys):
    assert main(["convert", "--model", str(tiny_folder), "--to", "int4", "--out", str(tmp_path / "e.gguf")]) == 2
    assert "choose one of fp8, gguf-q8_0, gguf-q5_k, gguf-q4_k" in capsys.readouterr().err


def test_the_command_names_a_missing_model_folder(tmp_path, capsys):
    assert main(["convert", "--model", str(tmp_path / "nowhere"), "--to", "fp8", "--out", str(tmp_path / "e.safetensors")]) == 2
    assert f"no file or folder at {tmp_path / 'nowhere'}" in capsys.readouterr().err
    assert not (tmp_path / "e.safetensors").exists()
