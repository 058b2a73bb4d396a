"""Ray job entrypoint for the analyst's audited enhancement: one clip, on one node of a cluster.

    ray job submit --address http://HEAD:8265 -- \\
        python pipelines/enhance.py /data/in/cam3.mpg -o /data/out/cam3.mkv --side-by-side

Takes the options of `vidrefocus enhance` (`vidrefocus enhance --help`), plus `--address`
(default: the job's cluster, `RAY_ADDRESS`) and `--gpu` (run on a node with a GPU; bit-identical
repeats are promised on CPU only, so the default is a CPU node). The enhancement runs as one
Ray task holding the CPU threads its audit records (`--cpu-threads`, default 2), so its result
and audit log are the same as on a workstation; `vidrefocus verify` checks it anywhere. Without
a cluster (no `--address`, no `RAY_ADDRESS`) it runs in this process. Paths must be on a volume
every node mounts at the same place.

For throughput over many clips without the audit, chunk DeblurNet across workers with
`vidrefocus deblur --workers N` or `pipelines/batch.py` (command deblur).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vidrefocus.cli import main as cli_main

__all__ = ["main", "split_args"]

_DEFAULT_THREADS = 2


def split_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """This entrypoint's own options, and the rest for `vidrefocus enhance`.

    Example:
        >>> own, rest = split_args(["in.mp4", "-o", "out.mkv", "--gpu", "--cpu-threads", "4"])
        >>> own.gpu, own.cpu_threads, rest
        (True, 4, ['in.mp4', '-o', 'out.mkv', '--cpu-threads', '4'])
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"))
    p.add_argument("--gpu", action="store_true")
    own, rest = p.parse_known_args(list(argv))
    threads = argparse.ArgumentParser(add_help=False)
    threads.add_argument("--cpu-threads", type=int, default=_DEFAULT_THREADS)
    own.cpu_threads = threads.parse_known_args(rest)[0].cpu_threads
    if own.gpu and "--device" not in rest:
        rest += ["--device", "cuda"]
    return own, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Run `vidrefocus enhance` as a task on the cluster (or here); returns its exit code."""
    own, rest = split_args(sys.argv[1:] if argv is None else argv)
    if not own.address:
        return cli_main(["enhance", *rest])
    import ray

    if not ray.is_initialized():
        ray.init(address=own.address, log_to_driver=True)
    # The package's own function, so workers import it rather than this file.
    task = ray.remote(num_cpus=own.cpu_threads, num_gpus=1 if own.gpu else 0)(cli_main)
    return int(ray.get(task.remote(["enhance", *rest])))


if __name__ == "__main__":
    sys.exit(main())
