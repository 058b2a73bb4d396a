"""`tree_rss_bytes`, the memory figure of `bench runtime`, `bench memory` and the flat-memory
test: a process tree's resident memory, where a child that has not run `exec` yet is its
parent's memory, not more of it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from vidrefocus.eval.bench_runtime import tree_rss_bytes

MIB = 2**20
# A parent that holds 200 MiB, then starts `sleep` (exec'd: a process of its own) and forks a
# child that never execs, and waits for both.
_PARENT = """
import os, subprocess, sys, time
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
sleeper = subprocess.Popen(["sleep", "30"])
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
print("ready", flush=True)
sys.stdin.readline()
os.kill(pid, 9)
sleeper.kill()
"""


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")
def test_a_child_that_has_not_exec_d_is_not_counted_twice() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        own = _rss(proc.pid)
        total = tree_rss_bytes(proc.pid)
        assert own > 200 * MIB
        # The parent once, plus `sleep` (a few MiB); the fork (also > 200 MiB) is left out.
        assert own < total < own + 20 * MIB, (own / MIB, total / MIB)
    finally:
        proc.communicate("\n", timeout=30)
