"""Stand-in for ComfyUI's server.PromptServer: records the progress texts sent to the UI."""


class PromptServer:
    instance = None

    def __init__(self):
        self.texts: list[tuple[str, str]] = []

    def send_progress_text(self, text, node_id, sid=None):
        self.texts.append((text, str(node_id)))


PromptServer.instance = PromptServer()
