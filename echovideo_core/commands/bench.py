"""`echovideo bench`: one generation measured stage by stage against a baseline in the same process.

    echovideo bench --config full --size 480x848 --frames 49 --steps 50 --weights fp8 --offload blocks:20 --json r.json
    echovideo bench --model models/echovideo --frames 13,25,49 --cache teacache:0.15 --json growth.json

The run uses the chosen weights, offload and speed options; the baseline (unless
--no-baseline) is the release's way: bf16 weights on CUDA (fp32 on a CPU), no offload,
the fusion recomputed at every step. Both run the same seeded inputs, one after the other
(the baseline first, then freed), so `speedup`, `memory_ratio` and
`max_abs_latent_diff_vs_baseline` compare like with like. Models: `--model DIR` (a released
folder) or `--config tiny|medium|full`: the DiT of that size with random weights built in
its storage format, and small random encoders (bench/kits.py). Several `--frames` values
show how the cost grows; the JSON is then a list, one object per value.
"""
from __future__ import annotations

import argparse
import gc
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from echovideo_core.acceleration.cli_options import add_speed_options, speed_options
from echovideo_core.commands.generate import add_memory_options, check_weight_formats, parse_size, pick_device
from echovideo_core.dtypes import DTYPE_NAMES, dtype_from_name
from echovideo_core.errors import InvalidInputError
from echovideo_core.paths import check_output_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

logger = logging.getLogger(__name__)


def _frame_counts(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--frames takes 4k+1 counts separated by commas (13,25,49), got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure time and memory of a generation against a baseline",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a released EchoVideo folder")
    source.add_argument("--config", choices=("tiny", "medium", "full"),
                        help="random weights of that size (full: the released 5.6B layout)")
    parser.add_argument("--size", type=parse_size, default=(480, 848), help="HxW (default 480x848)")
    parser.add_argument("--frames", type=_frame_counts, default=[49], help="4k+1, or several: 13,25,49 (default 49)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    parser.add_argument("--guidance", type=float, default=6.0, help="CFG scale (default 6.0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default=None,
                        help="compute dtype (default bf16 on CUDA, fp32 on CPU; also the baseline's weights)")
    parser.add_argument("--no-baseline", action="store_true", help="measure the run alone")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--json", type=Path, required=True, help="write the result here")
    parser.add_argument("--overwrite", action="store_true", help="replace --json if it exists")
    add_memory_options(parser, free_encoders=False)
    add_speed_options(parser)
    parser.set_defaults(run=run)


def _pipeline(args: argparse.Namespace, device: torch.device, dtype: torch.dtype, *, weights: str | None, offload: str):
    from echovideo_core.bench.kits import random_pipeline
    from echovideo_core.pipeline import EchoVideoPipeline

    if args.model is not None:
        pipe = EchoVideoPipeline.from_pretrained(args.model, torch_dtype=dtype, weights=weights,
                                                 transformer_file=args.transformer_file,
                                                 text_encoder_weights=args.t5_weights)
    else:
        pipe = random_pipeline(args.config, dtype=dtype, weights=weights, transformer_file=args.transformer_file)
    return pipe.to(device) if offload == "none" else pipe.offload(offload, device)


def _measure_all(args, pipe, frame_counts, *, label: str, **run_options):
    """One measured run per frame count, each with a progress bar (stderr) named `label`."""
    from tqdm import tqdm

    from echovideo_core.bench.run import measure_run
    from echovideo_core.sampling import SamplingSettings

    height, width = args.size
    results = []
    for frames in frame_counts:
        settings = SamplingSettings(height=height, width=width, num_frames=frames, num_inference_steps=args.steps,
                                    guidance_scale=args.guidance)
        with tqdm(total=args.steps, desc=f"{label}, {frames} frames", unit="step") as bar:
            results.append(measure_run(pipe, settings, seed=args.seed, vae_tiling=args.vae_tiling,
                                       on_step=lambda: bar.update(1), **run_options))
    return results


def _weights_label(args: argparse.Namespace, dtype) -> str:
    """The run's DiT storage: --weights, else the file it came from (a .gguf keeps its own
    block types), else the compute dtype."""
    from echovideo_core.dtypes import dtype_name

    if args.weights:
        return args.weights
    if args.transformer_file is not None:
        return f"as stored in {args.transformer_file.name}"
    return dtype_name(dtype)


def _free(pipe) -> None:
    import torch

    del pipe
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bench(args: argparse.Namespace) -> list[dict]:
    from echovideo_core.acceleration import check_speed_options
    from echovideo_core.acceleration.mag_ratios import mag_ratio_record
    from echovideo_core.bench.report import report, table
    from echovideo_core.bench.run import process_peak_memory

    import torch

    options = speed_options(args)
    if options.parallel != "none":
        raise InvalidInputError("echovideo bench measures one process: drop --parallel (time torchrun runs of "
                                "`echovideo generate` instead)")
    check_output_file(args.json, "--json", overwrite=args.overwrite, create_parents=True)
    check_weight_formats(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    dtype = dtype_from_name(args.dtype or ("bf16" if device.type == "cuda" else "fp32"), what="--dtype")
    magcache = options.cache.kind == "magcache"
    if magcache and args.no_baseline:
        raise InvalidInputError("--cache magcache calibrates its ratios on the baseline run: drop --no-baseline")
    check_speed_options(options, device, mag_ratios=[1.0] if magcache else None)  # the ratios come from the baseline
    baselines = [None] * len(args.frames)
    if not args.no_baseline:
        pipe = _pipeline(args, device, dtype, weights=None, offload="none")
        baselines = _measure_all(args, pipe, args.frames, label="baseline", release_fusion=True,
                                 record_mag_ratios=magcache)
        _free(pipe)
    pipe = _pipeline(args, device, dtype, weights=args.weights, offload=args.offload)
    runs = [_measure_all(args, pipe, [frames], label=options.label(), options=options,
                         mag_ratios=baseline.mag_ratios if magcache else None)[0]
            for frames, baseline in zip(args.frames, baselines)]
    results = []
    for frames, run, baseline in zip(args.frames, runs, baselines):
        description = {"config": args.config or str(args.model), "size": f"{args.size[0]}x{args.size[1]}",
                       "frames": frames, "steps": args.steps, "device": str(device),
                       "weights": _weights_label(args, dtype),
                       "offload": args.offload, "speed": options.label(),
                       "process_peak_memory_bytes": process_peak_memory(device)}
        results.append(report(description, run, baseline))
        if magcache:  # the calibration, so `echovideo generate --mag-ratios THIS.json` can use it
            results[-1].update(mag_ratio_record(baseline.mag_ratios, steps=args.steps))
        print(table(results[-1]))
    return results


def run(args: argparse.Namespace) -> int:
    from echovideo_core.atomic import write_json_atomic

    results = bench(args)  # a mistake is one line, from the CLI's error boundary
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.json, results[0] if len(results) == 1 else results)
    print(f"wrote {args.json}")
    return 0
