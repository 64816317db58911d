"""One bounded, thread-safe result cache for query results (least recently used goes first).

The Engine's metric frames, the explanation's scans and the usage charts' queries are all keyed
by (workspace file, data version, query): results of one data version never serve another, and
Streamlit sessions on their threads share what was computed (the background warm-up relies on it).
A cached DataFrame is handed to every thread that asks: treat it as read-only.

A result is computed once however many threads ask for it at the same moment (`single`): twenty
sessions opening the same uncached view wait for the first one's queries instead of running
twenty copies of them on a two-core server.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

_ALL: weakref.WeakSet[ResultCache] = weakref.WeakSet()
_MISSING = object()
FLIGHT_WAIT_SECONDS = 10.0
"""How long a thread waits for another computing the same result before computing it itself.

Bounded, never a hang: the one computing may be stopped (a rerun), or wait itself for a load
that waits for this thread's open cursor; then both go on, the result is computed twice."""


def clear_all() -> None:
    """Empties every result cache of the process (tests measuring queries, a memory-pressure valve)."""
    for cache in list(_ALL):
        cache.clear()


class ResultCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[Hashable, list] = {}  # key → [its lock, threads using it]
        _ALL.add(self)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: Hashable, default: Any = None) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return default

    def get_or_run(self, key: Hashable, run: Callable[[], Any]) -> Any:
        """The cached value, or `run()`'s, computed by one thread while others asking wait (`single`)."""
        found = self.get(key, _MISSING)
        if found is not _MISSING:
            return found
        with self.single(key):
            found = self.get(key, _MISSING)  # the thread we waited for computed it
            if found is not _MISSING:
                return found
            out = run()
            self.put(key, out)
            return out

    @contextmanager
    def single(self, key: Hashable, wait: float = FLIGHT_WAIT_SECONDS) -> Iterator[bool]:
        """Runs the block in one thread at a time per key; yields False when this thread waited
        `wait` seconds in vain and runs it beside the other (see FLIGHT_WAIT_SECONDS).

        A thread that already runs the block for this key (a nested call) is not made to wait for itself.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = [threading.RLock(), 0]
            flight[1] += 1
        got = flight[0].acquire(timeout=wait)
        try:
            yield got
        finally:
            if got:
                flight[0].release()
            with self._lock:
                flight[1] -= 1
                if not flight[1] and self._flights.get(key) is flight:
                    del self._flights[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
