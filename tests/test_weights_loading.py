"""The DiT in each weights format, built layer by layer: what is low-bit, what stays bf16,
and which inputs are refused (with the keys named)."""
from __future__ import annotations

import pytest
import torch
from gguf import GGUFWriter
from safetensors.torch import save_file
from torch import nn

from echovideo_core.errors import InvalidInputError
from echovideo_core.loading import CheckpointMismatchError, load_transformer
from echovideo_core.weights.formats import TRANSFORMER_WEIGHTS
from echovideo_core.weights.fp8 import Fp8Linear
from echovideo_core.weights.gguf_linear import GGUFLinear
from echovideo_core.weights.transformer import load_transformer_in_format, transformer_from_source
from weights_fixtures import IITF_PREFIXES, tiny_folder, tiny_weights, without  # noqa: F401  (fixtures)

LOW_BIT_TYPES = {"fp8": Fp8Linear, "gguf-q8_0": GGUFLinear, "gguf-q4_k": GGUFLinear}


@pytest.mark.parametrize("weights", ["fp8", "int8", "gguf-q8_0", "gguf-q4_k"])
def test_block_linears_are_low_bit_and_every_other_tensor_is_bf16(tiny_weights, weights):
    model = transformer_from_source(tiny_weights, weights)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.startswith("transformer_blocks."):
            if weights == "int8":
                assert type(module.weight).__name__ == "Int8Tensor", name
            elif weights.startswith("gguf") and module.in_features % 32:  # the tiny time width (16) fits no block
                assert type(module) is nn.Linear and module.weight.dtype == torch.bfloat16, name
            else:
                assert isinstance(module, LOW_BIT_TYPES[weights]), name
        elif isinstance(module, nn.Linear):
            assert type(module) is nn.Linear and module.weight.dtype == torch.bfloat16, name
    iitf = [k for k, v in model.state_dict().items() if k.startswith(IITF_PREFIXES)]
    assert iitf and all(model.state_dict()[k].dtype == torch.bfloat16 for k in iitf)
    assert model.dtype == torch.bfloat16


@pytest.mark.parametrize("weights", ["bf16", "fp32"])
def test_plain_formats_equal_the_strict_loader(tiny_folder, weights):
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[weights]
    ours = load_transformer_in_format(tiny_folder, weights).state_dict()
    theirs = load_transformer(tiny_folder / "transformer", torch_dtype=dtype).state_dict()
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_a_low_bit_model_computes_in_bf16_close_to_the_bf16_model(tiny_weights):
    from echovideo_core.testing.synthetic import final_latents, synthetic_inputs
    from echovideo_core.weights.accuracy import psnr_db

    inputs = synthetic_inputs(tiny_weights.config, height=32, width=32, num_frames=5, steps=1)
    bf16 = final_latents(transformer_from_source(tiny_weights, "bf16"), inputs)
    fp8 = final_latents(transformer_from_source(tiny_weights, "fp8"), inputs)
    assert torch.isfinite(fp8).all() and psnr_db(bf16, fp8) > 35


def test_an_unknown_weights_name_lists_the_valid_ones(tiny_weights):
    with pytest.raises(InvalidInputError, match="unknown weights 'fp4'.*" + ", ".join(TRANSFORMER_WEIGHTS)):
        transformer_from_source(tiny_weights, "fp4")


def test_gguf_weights_need_a_gguf_file(tiny_folder):
    with pytest.raises(InvalidInputError, match="not a .gguf file.*gguf-q4_k"):
        load_transformer_in_format(tiny_folder, "gguf")


def test_an_fp8_file_without_the_iitf_layers_is_refused_naming_them(tmp_path, tiny_weights):
    tensors = without({k: tiny_weights.read(k).data for k in tiny_weights.shapes()}, IITF_PREFIXES)
    save_file(tensors, str(tmp_path / "cogvideox_fp8.safetensors"))
    with pytest.raises(CheckpointMismatchError, match=r"does not fit EchoVideoTransformer3DModel: missing 57: face_proj\.weight"):  # the release has 57 IITF tensors
        load_transformer_in_format(tmp_path / "cogvideox_fp8.safetensors", "fp8")


def test_a_gguf_file_of_another_model_is_refused_naming_its_keys(tmp_path):
    writer = GGUFWriter(str(tmp_path / "flux.gguf"), arch="flux")
    writer.add_tensor("double_blocks.0.img_attn.qkv.weight", torch.zeros(4, 32).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(CheckpointMismatchError, match=r"architecture 'flux'.*unexpected 1: double_blocks\.0\.img_attn\.qkv\.weight"):
        load_transformer_in_format(tmp_path / "flux.gguf")


def test_a_gguf_file_with_a_missing_iitf_tensor_is_refused_naming_it(tmp_path, tiny_folder):
    from echovideo_core.weights.convert import convert_source
    from echovideo_core.weights.formats import weights_format
    from echovideo_core.weights.sources import RenamedSource
    from echovideo_core.weights.transformer import open_transformer_source

    source = open_transformer_source(tiny_folder)
    gguf = tmp_path / "full.gguf"
    convert_source(source, weights_format("gguf-q8_0"), gguf)
    damaged = RenamedSource(open_transformer_source(gguf), dropped=lambda key: key == "face_info_proj.weight")
    with pytest.raises(CheckpointMismatchError, match=r"missing 1: face_info_proj\.weight"):
        transformer_from_source(damaged)


@pytest.mark.parametrize("weights", ["fp8", "gguf-q8_0"])
def test_low_bit_layers_give_identical_latents_under_sequential_offload(tiny_weights, weights):
    from echovideo_core.testing.synthetic import final_latents, synthetic_inputs

    inputs = synthetic_inputs(tiny_weights.config, height=32, width=32, num_frames=5, steps=1)
    resident = final_latents(transformer_from_source(tiny_weights, weights), inputs)
    offloaded = transformer_from_source(tiny_weights, weights)
    offloaded.enable_sequential_offload("cpu")  # diffusers' leaf-level hooks find our nn.Linear subclasses
    assert torch.equal(final_latents(offloaded, inputs), resident)


def test_the_plain_float_path_does_not_import_the_low_bit_loaders():
    """A ComfyUI without the optional `gguf` package still loads plain-float models."""
    import subprocess
    import sys

    from pipeline_kit import tiny_model_dir

    code = ("import sys, torch; from echovideo_core.loading.components import load_dit; "
            f"load_dit({str(tiny_model_dir() / 'transformer')!r}, dtype=torch.float32); "
            "print(sorted(m for m in sys.modules if m.startswith('echovideo_core.weights.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "['echovideo_core.weights.formats']"


def test_a_low_bit_format_without_its_package_is_one_line_before_loading(monkeypatch, tmp_path, capsys):
    import importlib.util

    from echovideo_core.cli import main
    from pipeline_kit import tiny_model_dir, write_identity_files

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    image, arcface = write_identity_files(tmp_path)
    assert main(["generate", "--model", str(tiny_model_dir()), "--identity-image", str(image), "--arcface", str(arcface),
                 "--prompt", "p", "--out", str(tmp_path / "o.mp4"), "--weights", "fp8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--weights fp8 needs the gguf package" in err and "pip install" in err
