"""Ray job entrypoint for the analyst's faithful enhancement: DeblurNet only, one clip.

    ray job submit --address http://HEAD:8265 -- \\
        python pipelines/enhance.py /data/in/cam3.mp4 -o /data/out/cam3.mkv --workers 4

Takes the options of `vidrefocus deblur` (`vidrefocus deblur --help`) for a video output
(chunked runs write videos only, not defocus maps). Unless given, it adds `--address` (the
job's cluster, from `RAY_ADDRESS`) and `--resume`, so a retried job carries on from the chunks
its earlier attempt finished. Paths must be on a volume every node mounts at the same place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from vidrefocus.cli import main as cli_main

__all__ = ["cluster_args", "main"]


def cluster_args(argv: Sequence[str]) -> list[str]:
    """`argv` with `--address` (this job's cluster) and `--resume` added unless present.

    Example:
        >>> cluster_args(["in.mp4", "-o", "out.mkv"])[-3:]
        ['--address', 'auto', '--resume']
    """
    args = list(argv)
    if not any(a == "--address" or a.startswith("--address=") for a in args):
        args += ["--address", os.environ.get("RAY_ADDRESS", "auto")]
    if "--resume" not in args:
        args.append("--resume")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run `vidrefocus deblur` on the cluster; returns the CLI's exit code."""
    return cli_main(["deblur", *cluster_args(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
