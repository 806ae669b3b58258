"""Seconds spent per stage of a run."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator


class Timings:
    """Stage timer: seconds per stage name (summed when a stage runs more than once, as per piece),
    and the stage names reported as they start.

    Parameters
    ----------
    progress : callable, optional
        Called with the name of each stage as it starts.
    """

    def __init__(self, progress: Callable[[str], None] | None = None):
        self.timings: dict[str, float] = {}
        self.progress = progress or (lambda message: None)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name``."""
        self.progress(name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - start, 4)
