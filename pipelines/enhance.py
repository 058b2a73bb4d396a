"""Ray job entrypoint for the analyst's faithful enhancement (DeblurNet only): not available yet.

The enhancement pipeline needs DeblurNet (DESIGN.md "Models"), which has not landed. Until it
does, this entrypoint fails at once with a clear message (exit code 2) instead of submitting
a job that would do nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

MESSAGE = (
    "enhance: DeblurNet (the deblur-only restoration model) has not landed yet, so there is "
    "no enhancement pipeline to run. Use pipelines/refocus.py or pipelines/batch.py meanwhile; "
    "this entrypoint will take the same options as `vidrefocus enhance` once it exists.\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Explain why enhancement cannot run; returns 2 (a usage error: nothing was started)."""
    sys.stderr.write(MESSAGE)
    return 2


if __name__ == "__main__":
    sys.exit(main())
