"""Loader nodes: EchoVideo model (DiT + VAE + scheduler), T5 text encoder, face models."""
from __future__ import annotations

from echovideo_core.dtypes import PRECISIONS, precision_dtype
from echovideo_core.errors import InvalidInputError
from echovideo_core.loading.components import load_echovideo_model, load_face_models, load_text_encoder_bundle
from echovideo_core.placement import PLACEMENTS

from . import comfy_adapter as comfy
from . import model_choices as choices

WEIGHT_STORAGE = ("default", "fp8", "int8", "gguf-q8_0", "gguf-q5_k", "gguf-q4_k")
WEIGHTS_TIP = ("How the DiT's large layers wait in memory; they compute in `precision`. default: `precision` (a .gguf "
               "file keeps its own blocks); fp8: 8-bit + a scale per tensor, ~0.54x of bf16; int8: weight-only "
               "(needs torchao), ~0.54x; gguf-q8_0 / q5_k / q4_k: quantised while loading, Q4_K ~0.35x. Low-bit "
               "changes the numbers a little (docs/weights.md); LoRAs need default.")

T5_STORAGE = ("default", "fp8", "int8")
T5_WEIGHTS_TIP = ("How T5's encoder blocks wait in memory (~9.5 GB in bf16); they compute in `precision`. fp8 / int8 "
                  "(needs torchao): about 5 GB, the prompt embedding changes a little (docs/weights.md).")


def storage_weights(choice: str) -> str | None:
    """The widget's choice as a weights format (None: precision / as stored); "fp8_e4m3fn" is
    the name older workflows saved for fp8."""
    choice = {"fp8_e4m3fn": "fp8"}.get(choice, choice)
    if choice not in WEIGHT_STORAGE:
        raise InvalidInputError(f"weight_storage must be one of {', '.join(WEIGHT_STORAGE)}; got {choice!r}")
    return None if choice == "default" else choice


PRECISION = (list(PRECISIONS), {"default": "bf16", "tooltip": "Weight and compute precision (the release runs the DiT in bf16)."})
PLACEMENT_TIP = ("Where weights wait; every choice gives the same video. main_device: stay on the GPU (fastest; the "
                 "DiT alone is ~11 GB in bf16); model_offload: wait on the CPU, move to the GPU only while running "
                 "(one model's memory at a time, plus a copy per run); block_swap: the DiT stays on the GPU except "
                 "`swap_blocks` of its 42 blocks (~130 MB each in bf16), streamed in each step, copies overlapped on "
                 "CUDA; other models as model_offload; sequential_offload: the DiT visits the GPU one layer at a "
                 "time (least memory, slowest); cpu: run on the CPU (slow).")


class EchoVideoModelLoader:
    CATEGORY = "EchoVideo/loaders"
    DESCRIPTION = "Loads the EchoVideo DiT (released folder in models/echovideo or a file in models/diffusion_models) and its CogVideoX VAE."
    RETURN_TYPES = ("ECHO_MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The EchoVideo transformer, VAE and scheduler.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (choices.transformer_choices(), {"tooltip": "Released folder in models/echovideo/ or a transformer file in models/diffusion_models/."}),
            "vae": (choices.vae_choices(), {"tooltip": "The model folder's vae/, or a CogVideoX VAE file in models/vae/."}),
            "precision": PRECISION,
            "placement": (list(PLACEMENTS), {"default": "main_device", "tooltip": PLACEMENT_TIP}),
            "weight_storage": (list(WEIGHT_STORAGE), {"default": "default", "tooltip": WEIGHTS_TIP}),
        }, "optional": {
            "lora": (choices.lora_choices(), {"default": choices.NO_LORA, "tooltip": "An EchoVideo LoRA from models/loras (trained with `echovideo train`, or a peft/kohya export), merged into the DiT."}),
            "lora_strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05, "tooltip": "How much of the LoRA to merge (0: none, 1: as trained)."}),
            "swap_blocks": ("INT", {"default": 20, "min": 1, "max": 64, "tooltip": "With placement block_swap: how many DiT blocks wait on the CPU (more: less GPU memory, more copying)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, weight_storage="default"):
        return comfy.valid_choice(storage_weights, weight_storage)  # older workflows: fp8_e4m3fn

    def load(self, model, vae, precision, placement, weight_storage, lora=choices.NO_LORA, lora_strength=1.0,
             swap_blocks=20):
        loaded = load_echovideo_model(choices.transformer_path(model), vae_path=choices.vae_path(vae),
                                      dtype=precision_dtype(precision), placement=comfy.placement(placement, swap_blocks),
                                      weights=storage_weights(weight_storage), loras=choices.lora_pairs(lora, lora_strength))
        return (loaded,)


class EchoVideoTextEncoderLoader:
    CATEGORY = "EchoVideo/loaders"
    DESCRIPTION = "Loads the T5 v1.1 XXL encoder: the released folder's text_encoder/ or a single file from models/text_encoders (e.g. t5xxl_fp16.safetensors)."
    RETURN_TYPES = ("ECHO_TEXT_ENCODER",)
    RETURN_NAMES = ("text_encoder",)
    OUTPUT_TOOLTIPS = ("T5 encoder + tokenizer.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text_encoder": (choices.text_encoder_choices(), {"tooltip": "Released folder in models/echovideo/ or a T5 file in models/text_encoders/."}),
            "precision": PRECISION,
            "placement": (list(PLACEMENTS), {"default": "model_offload", "tooltip": PLACEMENT_TIP}),
        }, "optional": {
            "weight_storage": (list(T5_STORAGE), {"default": "default", "tooltip": T5_WEIGHTS_TIP}),
        }}

    def load(self, text_encoder, precision, placement, weight_storage="default"):
        if weight_storage not in T5_STORAGE:
            raise InvalidInputError(f"weight_storage must be one of {', '.join(T5_STORAGE)}; got {weight_storage!r}")
        source, tokenizer = choices.text_encoder_paths(text_encoder)
        return (load_text_encoder_bundle(source, tokenizer_dir=tokenizer, dtype=precision_dtype(precision),
                                         placement=comfy.placement(placement),
                                         weights=None if weight_storage == "default" else weight_storage),)


class EchoVideoFaceModelsLoader:
    CATEGORY = "EchoVideo/loaders"
    DESCRIPTION = "Loads insightface antelopev2, the BiSeNet face parser (+ RetinaFace beside it, for the fallback) and SigLIP."
    RETURN_TYPES = ("ECHO_FACE_MODELS",)
    RETURN_NAMES = ("face_models",)
    OUTPUT_TOOLTIPS = ("Face detection, recognition, parsing and SigLIP features.",)
    FUNCTION = "load"
    REQUIRES = ("insightface", "onnx", "onnxruntime", "cv2")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "antelopev2": (choices.antelopev2_choices(), {"tooltip": "Folder with scrfd_10g_bnkps.onnx + glintr100.onnx (models/insightface/models/antelopev2)."}),
            "parser": (choices.parser_choices(), {"tooltip": "parsing_bisenet.pth (models/facexlib or the model's face_encoder/); detection_Resnet50_Final.pth beside it enables the RetinaFace fallback."}),
            "siglip": (choices.siglip_choices(), {"tooltip": "SigLIP base patch16 224: the model folder's clip_visual_encoder/ or a folder in models/clip_vision/."}),
            "precision": (list(PRECISIONS), {"default": "bf16", "tooltip": "SigLIP precision."}),
        }}

    def load(self, antelopev2, parser, siglip, precision):
        parser_file = choices.parser_path(parser)
        face_models = load_face_models(
            choices.antelopev2_path(antelopev2), parser_file, choices.retinaface_beside(parser_file),
            choices.siglip_path(siglip), dtype=precision_dtype(precision), placement=comfy.placement("main_device"))
        return (face_models,)


NODE_CLASS_MAPPINGS = {
    "EchoVideoModelLoader": EchoVideoModelLoader,
    "EchoVideoTextEncoderLoader": EchoVideoTextEncoderLoader,
    "EchoVideoFaceModelsLoader": EchoVideoFaceModelsLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "EchoVideoModelLoader": "Load EchoVideo Model",
    "EchoVideoTextEncoderLoader": "Load EchoVideo Text Encoder",
    "EchoVideoFaceModelsLoader": "Load EchoVideo Face Models",
}
