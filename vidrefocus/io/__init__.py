"""vidrefocus.io."""

from __future__ import annotations
