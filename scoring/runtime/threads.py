"""One thread for small dense algebra.

Matrices of a few hundred rows (the matrix's bootstrap, the resampling game's weighted statistics) are too small to
gain from a second thread, and on a busy 2-core machine two OpenMP/BLAS threads fighting for one free core make
each operation many times slower (measured: the resampling game took 339 s with 2 threads against 13 s with one,
while another process held a core). Inside :func:`single_threaded`, torch and the BLAS libraries numpy and scipy
use one thread; the previous settings come back on exit.
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
