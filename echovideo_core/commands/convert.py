"""`echovideo convert`: write the EchoVideo DiT as an fp8 .safetensors or a GGUF file.

    echovideo convert --model models/echovideo --to fp8 --out echovideo_fp8_scaled.safetensors
    echovideo convert --model models/echovideo --to gguf-q4_k --out echovideo-Q4_K.gguf

The transformer blocks' linear layers are stored low-bit; the IITF layers (face_proj,
text_proj, face_info_proj, face_prj_wofc), norms, biases and the patch/time/output layers
stay bf16. fp8 files use ComfyUI's scaled-fp8 layout; GGUF files carry the model config.
One tensor at a time (memory stays small); the file appears only when complete.
Load the result with `echovideo generate --transformer-file FILE` (or --weights fp8).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path


logger = logging.getLogger(__name__)

TARGET_HELP = {
    "fp8": "float8_e4m3fn + per-tensor scale, 8 bits a weight (ComfyUI *_fp8_scaled layout)",
    "gguf-q8_0": "GGUF Q8_0, 8.5 bits a weight, closest to bf16",
    "gguf-q5_k": "GGUF Q5_K, 5.5 bits a weight",
    "gguf-q4_k": "GGUF Q4_K, 4.5 bits a weight, smallest, least accurate",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help="write the DiT as an fp8 or GGUF file (IITF layers kept bf16)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True,
                        help="released EchoVideo folder (or its transformer/), or one of our single .safetensors files")
    parser.add_argument("--to", required=True, metavar="TARGET",
                        help="; ".join(f"{name}: {text}" for name, text in TARGET_HELP.items()))
    parser.add_argument("--out", type=Path, required=True, help="output file (.safetensors for fp8, .gguf for GGUF)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from echovideo_core.weights.formats import require_low_bit_packages

    require_low_bit_packages(args.to)  # the converter itself writes GGUF blocks
    from echovideo_core.weights.convert import check_output, convert_transformer

    logging.getLogger("gguf").setLevel(logging.WARNING)  # its writer's INFO lines name our temporary file
    check_output(args.to, args.out, args.overwrite)  # before opening any model file; mistakes: the CLI's one line
    with tqdm(desc=f"converting to {args.to}", unit="tensor") as bar:
        def on_tensor(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = convert_transformer(args.model, args.to, args.out, overwrite=args.overwrite, on_tensor=on_tensor)
    print(f"wrote {result.out}: {result.target}, {result.tensors} tensors ({result.low_bit} low-bit, the rest bf16), "
          f"{result.bytes / 1e9:.2f} GB")
    return 0
