"""Ray job entrypoint: many clips, each with its own settings, on the job's cluster.

    ray job submit --address http://HEAD:8265 -- \\
        python pipelines/batch.py /data/jobs.yaml -o /data/out --workers 8 \\
        --report /data/out/report.json

Takes the options of `vidrefocus batch` (`vidrefocus batch --help`): a YAML job list or a
folder of videos, and an output folder. The job list (see `vidrefocus.runtime.jobs`):

    defaults: {command: refocus, options: {encode: {codec: prores_hq}}}
    jobs:
      - {input: /data/in/a.mp4, depth: /data/in/a_depth, focus: "0s:1.2m, 2s:3m"}
      - {input: /data/in/b.mp4, output: b_flat.mov, command: transcode}

Unless given, `--address` is the job's cluster (`RAY_ADDRESS`). One failing clip does not stop
the others (exit code 1 if any failed); rerunning the job skips clips whose output is recorded
as finished in the folder's `vidrefocus-batch.json` and resumes an interrupted clip from its
chunks. Paths must be on a volume every node mounts at the same place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from vidrefocus.cli import main as cli_main

__all__ = ["cluster_args", "main"]


def cluster_args(argv: Sequence[str]) -> list[str]:
    """`argv` with `--address` (this job's cluster) added unless present.

    Example:
        >>> cluster_args(["jobs.yaml", "-o", "out"])[-2:]
        ['--address', 'auto']
    """
    args = list(argv)
    if not any(a == "--address" or a.startswith("--address=") for a in args):
        args += ["--address", os.environ.get("RAY_ADDRESS", "auto")]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run `vidrefocus batch` on the cluster; returns the CLI's exit code."""
    return cli_main(["batch", *cluster_args(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
