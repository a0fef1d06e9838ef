"""Stand-in for comfy.utils.ProgressBar: records every update_absolute call."""
UPDATES: list[tuple[int, int, object]] = []


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total = total
        self.current = 0

    def update_absolute(self, value, total=None, preview=None):
        self.total = total if total is not None else self.total
        self.current = min(value, self.total)
        UPDATES.append((self.current, self.total, preview))
