"""Execution: one pass in this process (`local`), or resumable chunks on Ray (`driver`)."""

from __future__ import annotations
