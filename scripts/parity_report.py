"""Print the parity table of docs/parity.md: max abs difference to the released
implementation, stage by stage, for every reference case in tests/data.

    .venv/bin/python scripts/parity_report.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from echovideo_core import EchoVideoPipeline, load_transformer
from echovideo_core.testing.weight_recipe import recipe_tensors

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def max_abs(a, b) -> float:
    return (torch.as_tensor(a).double().cpu() - torch.as_tensor(b).double().cpu()).abs().max().item()


def report(case_dir: Path) -> list[tuple[str, float]]:
    meta = json.loads((case_dir / "case_meta.json").read_text())
    folder = case_dir / "pipeline" / "transformer"
    model = load_transformer(folder, extra_tensors=recipe_tensors(folder / "face_prj_wofc_recipe.json"))
    t = load_file(str(case_dir / "transformer_case.safetensors"))
    caught: dict[str, torch.Tensor] = {}
    model.face_prj_wofc.register_forward_hook(lambda m, a, o: caught.__setitem__("resampler", o))
    with torch.no_grad():
        fused = model.fuse(t["in.encoder_hidden_states"], t["in.encoder_face_hidden_states"], t["in.arcface_embedding"])
        out = model(t["in.hidden_states"], timestep=t["in.timestep"], conditioning=fused,
                    image_rotary_emb=(t["in.rotary_cos"], t["in.rotary_sin"])).sample
        from_stored = model(t["in.hidden_states"], timestep=t["in.timestep"], conditioning=t["mid.fused_encoder_hidden_states"],
                            image_rotary_emb=(t["in.rotary_cos"], t["in.rotary_sin"])).sample
    rows = [("resampler", max_abs(caught["resampler"], t["mid.resampler_out"])),
            ("fused tokens (transformer case)", max_abs(fused, t["mid.fused_encoder_hidden_states"])),
            ("transformer output", max_abs(out, t["out.sample"])),
            ("transformer output from the stored fused tokens (kernel drift)", max_abs(from_stored, t["out.sample"]))]
    p = load_file(str(case_dir / "pipeline_case.safetensors"))
    pipe = EchoVideoPipeline.from_pretrained(case_dir / "pipeline", transformer=model)
    call = meta["pipeline_case"]["call"]
    args = dict(face_image=p["in.face_image_uint8"].numpy(), arcface_embedding=p["in.arcface_embedding"],
                prompt=meta["pipeline_case"]["prompt"], negative_prompt=meta["pipeline_case"].get("negative_prompt"),
                height=call["height"], width=call["width"], num_frames=call["num_frames"],
                num_inference_steps=call["num_inference_steps"], guidance_scale=call["guidance_scale"],
                use_dynamic_cfg=call["use_dynamic_cfg"])
    negative, positive = pipe.encode_prompt(args["prompt"], args["negative_prompt"])
    uncond, cond = pipe.face_features(args["face_image"], args["arcface_embedding"])
    rows += [("T5 prompt / negative", max(max_abs(positive.embeds, p["t5.prompt_embeds"]), max_abs(negative.embeds, p["t5.negative_prompt_embeds"]))),
             ("SigLIP cond / uncond", max(max_abs(cond.siglip, p["siglip.last_hidden_state_cond"]), max_abs(uncond.siglip, p["siglip.last_hidden_state_uncond"]))),
             ("fused conditioning (pipeline)", max_abs(pipe.fuse(negative, positive, uncond, cond).tokens, p["dit.fused_encoder_hidden_states"]))]
    seed = int(meta.get("spec", {}).get("pipe", {}).get("seed", 42))
    steps: list[torch.Tensor] = []
    run = pipe(**args, generator=torch.Generator("cpu").manual_seed(seed), callback=lambda i, n, x: steps.append(x.clone()))
    rows += [(f"latents after step {i + 1}", max_abs(x, p[f"step{i}.latents_after"])) for i, x in enumerate(steps)]
    rows += [("final latents", max_abs(run.latents, p["out.final_latents_fp32"])),
             ("frames, float16 VAE", max_abs(run.frames, p["out.frames"]))]
    run32 = pipe(**args, generator=torch.Generator("cpu").manual_seed(seed), decode_dtype=torch.float32)
    rows.append(("frames, float32 VAE", max_abs(run32.frames, p["out.frames_fp32_vae"])))
    return rows


def main() -> int:
    torch.set_num_threads(2)
    for case_dir in sorted(p for p in DATA.glob("case_*") if (p / "case_meta.json").exists()):
        print(f"\n{case_dir.name}\n\n| stage | max abs diff |\n|---|---|")
        for name, value in report(case_dir):
            print(f"| {name} | {value:.2g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
