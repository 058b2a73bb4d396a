"""The chunk workers' process environment (the glibc arena cap, issue #10)."""

from __future__ import annotations

import pytest

from vidrefocus.runtime.pool import worker_env


def test_workers_get_two_malloc_arenas_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert worker_env() == {"MALLOC_ARENA_MAX": "2"}


def test_the_drivers_own_setting_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert worker_env() == {"MALLOC_ARENA_MAX": "8"}
