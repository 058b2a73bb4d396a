"""The chunk workers' resources and process environment: CPUs, cores, the glibc arena cap."""

from __future__ import annotations

import pytest

from vidrefocus.errors import ConfigError
from vidrefocus.runtime.pool import cpu_sets, machine_cores, worker_cpus, worker_env


def test_workers_get_two_malloc_arenas_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert worker_env() == {"MALLOC_ARENA_MAX": "2"}


def test_the_drivers_own_setting_is_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert worker_env() == {"MALLOC_ARENA_MAX": "8"}


def test_cpus_are_shared_among_workers_on_this_machine() -> None:
    assert worker_cpus(None, 1, 16) == 16
    assert worker_cpus(None, 3, 16) == 5
    assert worker_cpus(None, 4, 2) == 1  # oversubscribed: one each all the same
    assert worker_cpus(None, 2, None) == 1  # a cluster: one CPU each
    assert worker_cpus(3, 2, 16) == worker_cpus(3, 2, None) == 3  # as configured


def test_pinned_workers_get_disjoint_cores() -> None:
    cores = machine_cores()
    sets = cpu_sets(len(cores), 1)
    assert [c for s in sets for c in s] == cores
    assert cpu_sets(1, len(cores)) == [tuple(cores)]
    with pytest.raises(ConfigError, match=r"runtime.pin_cpus needs .* > \d+ cores"):
        cpu_sets(len(cores) + 1, 1)
