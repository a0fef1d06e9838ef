"""`echovideo export-native TRANSFORMER OUT`: the EchoVideo transformer as one file for ComfyUI
core's Load Diffusion Model (core's CogVideoX key layout; the identity layers included, read
by EchoVideo Apply Identity (native) from the same file; the config rides in the metadata,
so Load EchoVideo Model reads the file too). TRANSFORMER: the released `transformer/` folder
(or the whole released folder, or a single file). Needs the whole transformer in memory
once (about 11 GB in bf16 at full size)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from echovideo_core.dtypes import PRECISION_NAMES, dtype_from_name
from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_output_file

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export-native", help="write the transformer as one file for ComfyUI core's Load Diffusion Model",
                                   description=__doc__)
    parser.add_argument("transformer", type=Path, help="released transformer/ folder, released root, or a single file")
    parser.add_argument("out", type=Path, help="the .safetensors to write (e.g. ComfyUI/models/diffusion_models/echovideo_transformer_native.safetensors)")
    parser.add_argument("--dtype", choices=PRECISION_NAMES, default="bf16", help="weight precision (default bf16, as released)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(run=run)


def export_native(transformer: Path, out: Path, dtype_name: str = "bf16", overwrite: bool = False) -> Path:
    from safetensors.torch import save_file

    from echovideo_core.atomic import atomic_path
    from echovideo_core.loading import CONFIG_METADATA_KEY, infer_config, read_transformer_weights
    from echovideo_core.native_layout import to_native_layout

    check_output_file(out, "OUT", overwrite=overwrite, create_parents=True)  # fail before the long part
    if out.suffix != ".safetensors":
        raise InvalidInputError(f"OUT {out}: the output must be a .safetensors file")
    dtype = dtype_from_name(dtype_name)
    state, config = read_transformer_weights(transformer, dtype=dtype)
    config = {k: v for k, v in (config or infer_config(state)).items() if not k.startswith("_")}
    native = {k: v.contiguous() for k, v in to_native_layout(state).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_file(native, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(config)})
    return out


def run(args: argparse.Namespace) -> int:
    out = export_native(args.transformer, args.out, args.dtype, args.overwrite)  # mistakes: the CLI's one line
    print(f"wrote {out} ({args.dtype}, ComfyUI core key layout + EchoVideo identity layers)")
    return 0
