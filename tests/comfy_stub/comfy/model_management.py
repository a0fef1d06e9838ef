"""Stand-in for comfy.model_management: CPU devices, recorded memory requests, an
interrupt that fires on the Nth check (`INTERRUPT_AFTER`, None = never), and the loaded
models list (`current_loaded_models` of LoadedModel) that load_models_gpu fills and
unload_all_models empties, without ComfyUI's memory arithmetic."""
import torch

INTERRUPT_AFTER: int | None = None
CHECKS = 0
FREE_REQUESTS: list[tuple[int, torch.device]] = []
EMPTY_CACHE_CALLS = 0
LOAD_REQUESTS: list[tuple[list, bool]] = []
current_loaded_models: list = []


class InterruptProcessingException(Exception):
    pass


def throw_exception_if_processing_interrupted():
    global CHECKS
    CHECKS += 1
    if INTERRUPT_AFTER is not None and CHECKS >= INTERRUPT_AFTER:
        raise InterruptProcessingException()


def get_torch_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


def free_memory(memory_required, device, keep_loaded=()):
    FREE_REQUESTS.append((memory_required, device))


def soft_empty_cache(force=False):
    global EMPTY_CACHE_CALLS
    EMPTY_CACHE_CALLS += 1


class LoadedModel:
    def __init__(self, model):
        self.model = model

    def model_unload(self, memory_to_free=None, unpatch_weights=True):
        self.model.detach(unpatch_weights)
        return True


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False):
    LOAD_REQUESTS.append((list(models), force_full_load))
    for model in models:
        current_loaded_models[:] = [m for m in current_loaded_models if m.model is not model]
        current_loaded_models.insert(0, LoadedModel(model))
        model.patch_model(model.load_device)


def unload_all_models():
    while current_loaded_models:
        current_loaded_models.pop().model_unload()
