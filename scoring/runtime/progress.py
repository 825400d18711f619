"""Progress bars on stderr (rich), so stdout stays clean for ``--json -``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: A bar is shown only when the work has more batches than this.
MIN_BATCHES_FOR_BAR = 3


@contextmanager
def progress_bar(description: str, *, total: int, batches: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(rows)``; draws a bar on stderr when enabled and ``batches > MIN_BATCHES_FOR_BAR``.

    Under torchrun only rank 0 draws (its shard's progress stands for all).
    """
    from isgame.scoring.runtime.distributed import current_group

    if not enabled or batches <= MIN_BATCHES_FOR_BAR or not current_group().is_main:
        yield lambda rows: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda rows: progress.advance(task, rows)
