"""One thread for small dense algebra.

Matrices of a few hundred rows (the matrix's resampling draws, the resampling game's weighted statistics) are too
small to gain from a second thread, and when another process holds a core, OpenMP/BLAS threads that wait for each
other at every operation make each one many times slower. Inside :func:`single_threaded`, torch and the BLAS
libraries numpy and scipy use one thread; the previous settings come back on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def single_threaded() -> Iterator[None]:
    """Limit torch's intra-op threads and BLAS to one thread for the block; restore them afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(previous)
