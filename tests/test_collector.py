"""The cyclic collector is paused for builds (knowledge/collector.py) and always resumed after them; a
serving process settles it (what is alive is frozen), and a later settle frees what was frozen since."""

from __future__ import annotations

import gc
import weakref

import pytest

from bot.services import Services
from knowledge.collector import collector_paused, settle


@pytest.fixture(autouse=True)
def _collector_back_on():
    yield
    gc.enable()
    gc.unfreeze()  # (settle's freeze must not outlive its test)


class Node:
    """An object in a reference cycle (freed only by the cyclic collector)."""

    def __init__(self) -> None:
        self.me = self


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


def test_settle_freezes_what_is_alive_and_a_later_settle_frees_a_cycle_dropped_since() -> None:
    cycle = Node()
    dropped = weakref.ref(cycle)
    settle()
    assert gc.get_freeze_count() > 0
    del cycle
    gc.collect()  # (an ordinary collection does not look at frozen objects)
    assert dropped() is not None
    settle()
    assert dropped() is None


async def test_a_full_build_of_a_serving_knowledge_base_settles_the_collector(default_kb: Services) -> None:
    gc.unfreeze()
    await default_kb.kb.rebuild()
    assert gc.get_freeze_count() == 0  # (tests and commands do not settle: a collection per build)
    default_kb.kb.settle_after_build = True
    await default_kb.kb.rebuild()
    assert gc.get_freeze_count() > 0
