"""`python -m vidrefocus.cli`: the same as the `vidrefocus` console script."""

from __future__ import annotations

import sys

from vidrefocus.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
