"""Stand-in for comfy.model_patcher.ModelPatcher: the constructor's signature and the few
members nodes/comfy_adapter.py reads. Loading is a plain `.to(device)` with the byte count
recorded; nothing is patched and no memory is managed (the live ComfyUI test checks that)."""


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.model = model
        self.load_device = load_device
        self.offload_device = offload_device
        model.model_lowvram = False
        model.model_loaded_weight_memory = 0

    def model_size(self):
        return sum(t.numel() * t.element_size() for t in self.model.state_dict().values())

    def loaded_size(self):
        return self.model.model_loaded_weight_memory

    def patch_model(self, device_to=None, lowvram_model_memory=0, load_weights=True, force_patch_weights=False):
        self.model.to(device_to)
        self.model.model_loaded_weight_memory = self.model_size()
        return self.model

    def detach(self, unpatch_all=True):
        self.model.to(self.offload_device)
        self.model.model_loaded_weight_memory = 0
        return self.model
