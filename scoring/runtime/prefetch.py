"""Read ahead in a background thread, so that decoding and resizing overlap the network.

Decoding (PIL, zlib) and torch's resize release the GIL, so a reader thread keeps one or two
batches ready while the main thread runs the classifier; the order of items never changes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")

_DONE = object()


def prefetched(items: Iterable[Item], *, depth: int = 2) -> Iterator[Item]:
    """Yield ``items`` in order while a daemon thread produces up to ``depth`` of them ahead.

    An exception raised while producing is re-raised here, at the item where it happened; when the
    consumer stops early (``break``, an exception), the thread stops at its next item.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as error:  # handed to the consumer, which re-raises it
            put((None, error))
            return
        put((_DONE, None))

    worker = threading.Thread(target=produce, name="isgame-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
