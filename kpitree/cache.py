"""One bounded, thread-safe result cache for query results (least recently used goes first).

The Engine's metric frames, the explanation's scans and the usage charts' queries are all keyed
by (workspace file, data version, query): results of one data version never serve another, and
Streamlit sessions on their threads share what was computed (the background warm-up relies on it).
A cached DataFrame is handed to every thread that asks: treat it as read-only.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_ALL: weakref.WeakSet[ResultCache] = weakref.WeakSet()


def clear_all() -> None:
    """Empties every result cache of the process (tests measuring queries, a memory-pressure valve)."""
    for cache in list(_ALL):
        cache.clear()


class ResultCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
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

    def get_or_run(self, key: Hashable, run: Callable[[], Any]) -> Any:
        """The cached value, or `run()`'s (outside the lock: two threads may both compute it once)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        out = run()
        self.put(key, out)
        return out

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
