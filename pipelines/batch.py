"""Ray job entrypoint: run many clips, one after another, on one Ray cluster connection.

    ray job submit --address http://HEAD:8265 -- \\
        python pipelines/batch.py /data/jobs.yaml --workers 8 --report /data/out/report.json

The job list is YAML (or JSON):

    command: refocus            # or transcode; the default for every job
    options: [--config, /opt/vidrefocus/cluster/job-config.yaml]   # added to every job
    jobs:
      - input: /data/in/a.mp4
        output: /data/out/a.mov
        options: [--depth, /data/in/a_depth, --focus, "0s:1.2m, 2s:3m"]
      - input: /data/in/b.mp4
        output: /data/out/b.mov
        command: transcode

Each job runs the `vidrefocus` command with `--resume`, so rerunning the batch after a crash
skips finished clips (their output exists) and continues unfinished ones from their manifest.
A failed clip is reported and the batch goes on; the exit code is 1 if any clip failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from vidrefocus.cli import main as cli_main

__all__ = ["BatchJob", "load_jobs", "main", "run_batch"]

log = logging.getLogger("vidrefocus.batch")

COMMANDS = ("refocus", "transcode")


@dataclass(frozen=True)
class BatchJob:
    """One clip of a batch: the command, its input and output, and extra CLI options."""

    command: str
    input: str
    output: str
    options: tuple[str, ...] = ()

    def argv(self, extra: Sequence[str]) -> list[str]:
        return [self.command, self.input, "-o", self.output, *self.options, *extra, "--resume"]


def load_jobs(path: Path) -> list[BatchJob]:
    """Read a job list (see the module docstring).

    Raises:
        SystemExit: an unreadable file or a malformed entry (the message names the entry).
    """
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"{path}: cannot read the job list ({err}).") from err
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise SystemExit(f"{path}: expected a mapping with a 'jobs' list.")
    default = data.get("command", "refocus")
    common = [str(o) for o in data.get("options", [])]
    jobs = []
    for i, entry in enumerate(data["jobs"]):
        if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
            raise SystemExit(f"{path}: jobs[{i}] needs 'input' and 'output'.")
        command = entry.get("command", default)
        if command not in COMMANDS:
            raise SystemExit(f"{path}: jobs[{i}].command must be one of {', '.join(COMMANDS)}.")
        options = (*common, *(str(o) for o in entry.get("options", [])))
        jobs.append(BatchJob(command, str(entry["input"]), str(entry["output"]), options))
    return jobs


def run_batch(jobs: Sequence[BatchJob], extra: Sequence[str]) -> list[dict[str, Any]]:
    """Run each job with the `vidrefocus` CLI; a clip whose output exists is skipped."""
    results = []
    for job in jobs:
        start = time.perf_counter()
        if Path(job.output).exists():
            code, status = 0, "skipped (output exists)"
        else:
            code = cli_main([*job.argv(extra), "-q"])
            status = "done" if code == 0 else f"failed (exit {code})"
        log.warning("%s -> %s: %s", job.input, job.output, status)
        results.append(
            {**asdict(job), "status": status, "exit_code": code,
             "seconds": round(time.perf_counter() - start, 3)}
        )  # fmt: skip
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, connect to Ray once, run the batch; returns 0, or 1 if a clip failed."""
    parser = argparse.ArgumentParser(description="Run a list of vidrefocus jobs on Ray.")
    parser.add_argument("jobs", type=Path, help="YAML or JSON job list")
    parser.add_argument("--workers", type=int, help="Ray workers per clip (default: all GPUs)")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"),
                        help="Ray cluster (default: this job's, or auto)")  # fmt: skip
    parser.add_argument("--report", type=Path, help="write the per-clip results as JSON")
    args = parser.parse_args(argv)
    jobs = load_jobs(args.jobs)
    extra = [] if args.workers is None else ["--workers", str(args.workers)]
    if args.workers != 0:
        import ray

        # One connection for the whole batch: each clip's driver finds Ray initialised.
        try:
            ray.init(address=args.address, log_to_driver=False)
        except ConnectionError as err:
            raise SystemExit(
                f"cannot reach the Ray cluster at {args.address} ({err}); pass --address, "
                "or --workers 0 to run the clips in this process."
            ) from err
    try:
        results = run_batch(jobs, extra)
    finally:
        if args.workers != 0:
            ray.shutdown()
    if args.report is not None:
        args.report.write_text(json.dumps(results, indent=2))
    failed = [r for r in results if r["exit_code"] != 0]
    log.warning("%d clips: %d failed", len(results), len(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
