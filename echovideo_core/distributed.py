"""What every multi-process run (training, parallel inference) needs from torch.distributed."""
from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger(__name__)

TEARDOWN_SECONDS = 120


@contextmanager
def exit_if_teardown_hangs(multi_process: bool, seconds: float = TEARDOWN_SECONDS) -> Iterator[None]:
    """Leave the process if destroying the process group hangs, which torch.distributed does
    now and then (pytorch/pytorch#75097; seen here once in many 2-process gloo runs).

    Only armed after the final barrier, when all work is saved: exiting then loses nothing,
    while a hang would hold the launcher (and a CI job) until its own timeout.
    """
    if not multi_process:
        yield
        return

    def leave() -> None:
        logger.warning("process-group teardown did not finish in %d s (pytorch#75097); the run is complete "
                       "and saved, so this process exits now", seconds)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(0)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
