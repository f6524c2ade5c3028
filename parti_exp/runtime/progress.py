"""Progress of long work outside Lightning's training bar: sampling many prompts, building the image cache,
extracting real features, generating the metrics' images.

On a terminal each stage shows a rich progress bar with its counts, rate and time left (on the same console as
Lightning's bar, inside which it nests during training); when the output is not a terminal (a batch job, a pipe, the
tests) it draws nothing. Either way the stage ends with one log line, ``<stage>: <count> <unit> in 12.3 s``, which
reaches the run's log file (``train.log``) with every other message. Only the process of rank 0 reports.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, TypeVar

from lightning.fabric.utilities.rank_zero import rank_zero_only
from rich import get_console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

log = logging.getLogger(__name__)

Advance = Callable[[int], None]
T = TypeVar("T")


def shows_bars() -> bool:
    """True when a bar would be seen: rank 0, writing to a terminal."""
    return rank_zero_only.rank == 0 and get_console().is_terminal


# Who else hears of each step besides the bar (``reported_to``): the demo page's progress line.
_listener: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("progress_listener", default=None)


@contextmanager
def reported_to(listener: Callable[[str, int, int], None]) -> Iterator[None]:
    """Within this block, every stage's steps also call ``listener(stage, done, total)``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


@contextmanager
def progress(stage: str, total: int, unit: str = "images") -> Iterator[Advance]:
    """Yield ``advance(n)``, to be called as ``n`` of ``total`` ``unit`` are done; see the module doc."""
    start = time.perf_counter()
    listener, done = _listener.get(), [0]

    def told(n: int) -> None:
        done[0] += n
        listener(stage, done[0], total)

    heard = told if listener is not None else lambda n: None
    if shows_bars():
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
        with Progress(*columns, console=get_console(), transient=True) as bar:
            task = bar.add_task(stage, total=total)
            yield lambda n=1: (bar.advance(task, n), heard(n))
    else:
        yield lambda n=1: heard(n)
    if rank_zero_only.rank == 0:
        log.info("%s: %d %s in %.1f s", stage, total, unit, time.perf_counter() - start)


def tracked(items: Iterable[T], stage: str, total: int, per_item: int | Callable[[T], int] = 1,
            unit: str = "images") -> Iterator[T]:
    """``items``, reporting after each that ``per_item`` ``unit`` are done (a number, or a function of the item:
    ``len`` for batches): ``progress`` for a loop."""
    with progress(stage, total, unit) as advance:
        for item in items:
            yield item
            advance(per_item(item) if callable(per_item) else per_item)
