"""Benchmark of one denoising step of the EchoVideo DiT: ratios against a baseline, same process.

Baseline: the release's way, fusing (T5, SigLIP, ArcFace) inside every step. Variants:
fusion computed once per run (ours), and bfloat16 weights. Random weights (timing needs no
real checkpoint); the model width and size are arguments, so the same script serves a laptop
CPU (defaults) and a GPU (`--device cuda --layers 42 --heads 48 --height 480 --width 848
--frames 49`). Prints seconds per step and the ratio to the baseline; no test times anything.

    python benchmarks/bench_transformer.py [--device cpu] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from echovideo_core import EchoVideoTransformer3DModel, rotary_embeddings
from echovideo_core.geometry import latent_frame_count


def build(args: argparse.Namespace, dtype: torch.dtype) -> EchoVideoTransformer3DModel:
    torch.manual_seed(0)
    model = EchoVideoTransformer3DModel(
        num_attention_heads=args.heads, attention_head_dim=64, num_layers=args.layers,
        in_channels=32, out_channels=16, text_embed_dim=args.text_dim, time_embed_dim=512,
    )
    return model.to(device=args.device, dtype=dtype).eval()


def inputs(args: argparse.Namespace, model: EchoVideoTransformer3DModel, dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(1)
    f, h, w = latent_frame_count(args.frames), args.height // 8, args.width // 8
    dev = args.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(dev, dtype)

    return {
        "latents": rand(2, f, 32, h, w),
        "text": rand(2, 226, args.text_dim),
        "siglip": rand(2, 196, 768),
        "arcface": rand(2, 512),
        "t": torch.tensor([999, 999], device=dev),
        "rotary": tuple(x.to(dev) for x in rotary_embeddings(model.config, height=args.height, width=args.width, num_frames=args.frames)),
    }


def time_steps(step, args: argparse.Namespace) -> float:
    step()  # warm-up
    samples = []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - start) / args.steps)
    return statistics.median(samples)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--text-dim", type=int, default=1024)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, float] = {}
    for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = build(args, dtype)
        x = inputs(args, model, dtype)
        cond = model.fuse(x["text"], x["siglip"], x["arcface"])
        if dtype is torch.float32:
            results["fuse every step (release), float32"] = time_steps(
                lambda: model(x["latents"], x["t"], image_rotary_emb=x["rotary"], text_embeds=x["text"], siglip_embeds=x["siglip"], arcface=x["arcface"]),
                args,
            )
        results[f"fuse once per run, {dtype_name}"] = time_steps(
            lambda: model(x["latents"], x["t"], conditioning=cond, image_rotary_emb=x["rotary"]), args
        )
        del model
    baseline = results["fuse every step (release), float32"]
    print(f"device={args.device} layers={args.layers} heads={args.heads} size={args.height}x{args.width}x{args.frames}")
    for name, seconds in results.items():
        print(f"{name:40s} {seconds * 1000:9.1f} ms/step   x{baseline / seconds:5.2f} vs baseline")


if __name__ == "__main__":
    main()
