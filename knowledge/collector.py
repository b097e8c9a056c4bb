"""Keeping Python's cyclic garbage collector off the objects a build leaves for the process's life.

A full build or a large import creates millions of objects (entries' words, documents, token lists)
that nearly all stay alive. Each time the heap has grown by a quarter, Python runs a full
collection over every live object, for nothing: at 100k entries that was a quarter of a first
build (BENCHMARKS.md). They hold no reference cycles to collect, so the collector is paused for
the build and resumed after it; objects are still freed the moment their last reference goes.

A serving process (``policybot run``) also ``settle``s once it has started and after each full build:
what is alive then (the index, the lexicon, the modules) is moved out of the collector's sight
(``gc.freeze``). Otherwise every full collection walks it again while requests wait: 50-90 ms
with the default knowledge base (BENCHMARKS.md), a stall of every request in flight.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # builds under way (they may overlap: two imports, a rebuild during an import)
_paused_here = False  # whether this module paused it (never resume a collector someone else disabled)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector until the last of the overlapping ``with`` blocks ends."""
    global _depth, _paused_here
    with _lock:
        if _depth == 0 and gc.isenabled():
            gc.disable()
            _paused_here = True
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _paused_here:
                _paused_here = False
                gc.enable()


def settle() -> None:
    """Collect once, then freeze what is alive, so later collections look only at newer objects.

    What an earlier ``settle`` froze is looked at again first (``gc.unfreeze``): an index replaced
    since is freed here even if it held reference cycles."""
    with _lock:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
