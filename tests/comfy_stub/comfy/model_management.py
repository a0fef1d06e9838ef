"""Stand-in for comfy.model_management: CPU devices, recorded memory requests, and an
interrupt that fires on the Nth check (`INTERRUPT_AFTER`, None = never)."""
import torch

INTERRUPT_AFTER: int | None = None
CHECKS = 0
FREE_REQUESTS: list[tuple[int, torch.device]] = []
EMPTY_CACHE_CALLS = 0


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
