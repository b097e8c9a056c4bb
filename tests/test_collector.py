"""The cyclic collector is paused for builds (knowledge/collector.py) and always resumed after them."""

from __future__ import annotations

import gc

import pytest

from knowledge.collector import collector_paused


@pytest.fixture(autouse=True)
def _collector_back_on():
    yield
    gc.enable()


def test_overlapping_builds_resume_it_when_the_last_ends() -> None:
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)  # (overlapping, not nested: async builds end in any order)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_it_is_resumed_after_a_failed_build() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("bad line")
    assert gc.isenabled()


def test_a_collector_disabled_by_the_host_program_stays_disabled() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
