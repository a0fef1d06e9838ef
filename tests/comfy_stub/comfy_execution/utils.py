"""Stand-in for comfy_execution.utils: the executing node's context (set by the tests)."""
from typing import NamedTuple, Optional


class ExecutionContext(NamedTuple):
    prompt_id: str
    node_id: str
    list_index: Optional[int]


CURRENT: Optional[ExecutionContext] = None


def get_executing_context() -> Optional[ExecutionContext]:
    return CURRENT
