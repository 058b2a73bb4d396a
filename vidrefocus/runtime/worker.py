"""The Ray chunk worker: an actor that holds a job's stages and processes whole chunks."""

from __future__ import annotations

import ray

from vidrefocus.runtime.chunk import ChunkProcessor

__all__ = ["MAX_RESTARTS", "MAX_TASK_RETRIES", "ChunkWorker"]

# A worker process that dies (out of memory, a lost node, a killed pod) is restarted and its
# chunk retried; chunk files are written under a temporary name and renamed, so a retry
# simply writes the chunk again. Errors raised by the chunk itself are not retried.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3

# Defined once, at import (STYLE.md "Ray"): the same class as the in-process path, so the
# code that runs in a test is the code that runs on a GPU node. Resources (CPUs, GPUs) are
# set per job with `.options()` by the driver.
ChunkWorker = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(
    ChunkProcessor
)
