"""Parsing in a helper process: large runs overlap the engine with database and mailbox work.
Imports the engine only."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from bounces.parsing import ParseOptions, parse_bounce

from .processing import Item

log = logging.getLogger(__name__)


# Tests that start helper threads of their own may allow the fork anyway.
FORK_WITH_THREADS = False


def _parse_pairs(pairs: list[tuple[int, bytes]], options: ParseOptions) -> list[Item]:
    return [Item(raw_id=i, raw=raw, result=parse_bounce(raw, options)) for i, raw in pairs]


class BackgroundParser:
    """One forked worker process that parses batches (the engine is pure Python, no DB).

    Falls back to parsing in-process when a process cannot be started here (e.g. inside
    a daemonic worker): `start` then returns an object that parses synchronously.
    """

    def __init__(self, options: ParseOptions, executor: Any) -> None:
        self.options = options
        self.executor = executor

    @classmethod
    def start(cls, options: ParseOptions) -> BackgroundParser:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = None
        # Forking a process that runs other threads can deadlock the child on a lock one
        # of them held (logging, ...): then parse here (e.g. Celery's thread pool).
        alone = threading.active_count() == 1 or FORK_WITH_THREADS
        if alone and not multiprocessing.current_process().daemon and (os.cpu_count() or 1) > 1:
            try:
                executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
            except (OSError, ValueError):  # pragma: no cover - no fork here
                executor = None
        return cls(options, executor)

    def submit(self, pairs: list[tuple[int, bytes]]) -> Any:
        from concurrent.futures import Future

        if self.executor is not None:
            try:
                return self.executor.submit(_parse_pairs, pairs, self.options)
            except Exception:  # noqa: BLE001 - a broken pool: parse here instead
                log.warning("background parser unavailable; parsing in-process", exc_info=True)
                self.executor = None
        done: Future = Future()
        done.set_result(_parse_pairs(pairs, self.options))
        return done

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
