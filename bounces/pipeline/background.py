"""Parsing in a helper process: large runs overlap the engine with database and mailbox work.
Imports the engine only."""

from __future__ import annotations

import logging
import os
import signal
import stat
import sys
import threading
import time
from typing import Any

from bounces.parsing import ParseOptions, parse_bounce

from .processing import Item

log = logging.getLogger(__name__)


# Tests that start helper threads of their own may allow the fork anyway.
FORK_WITH_THREADS = False


def _die_with_parent(parent_pid: int) -> None:
    """Initializer of the forked helper (issue 12, item 9): it must never outlive the run.

    1. Linux: the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG), checked
       against a parent that died before the call.
    2. Everywhere: a thread that exits when the parent changes (re-parented to init).
    3. Every socket inherited from the parent (its PostgreSQL connection, the IMAP session) is
       replaced by /dev/null, without a word on the wire: a killed parent's connection then
       really closes, so its transaction is rolled back and its row locks released, whatever
       the helper does. The helper needs no database: it only parses bytes.
    """
    _drop_inherited_sockets()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no prctl here
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _drop_inherited_sockets() -> None:
    # The pool talks to its parent over pipes, never sockets: every socket here is inherited.
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        names = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
        for fd in sorted(int(name) for name in names):
            try:
                if fd > 2 and fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(devnull, fd)
            except OSError:
                continue
    finally:
        os.close(devnull)
    try:  # then forget Django's connections (their sockets are /dev/null now)
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            conn.connection = None
    except Exception:  # noqa: BLE001 - no Django here: nothing to forget
        pass


def _parse_pairs(pairs: list[tuple[int, bytes]], options: ParseOptions) -> list[Item]:
    return [Item(raw_id=i, raw=raw, result=parse_bounce(raw, options)) for i, raw in pairs]


def _parse_raws(raws: list[bytes], options: ParseOptions) -> list[Any]:
    """In the helper: the results only (the parent keeps the bytes; sending them back would
    pickle every message twice more)."""
    return [parse_bounce(raw, options) for raw in raws]


class _Parsed:
    """A submitted batch: `result()` pairs the helper's results with the bytes kept here."""

    def __init__(self, future: Any, pairs: list[tuple[int, bytes]]) -> None:
        self.future = future
        self.pairs = pairs

    def result(self) -> list[Item]:
        return [Item(raw_id=i, raw=raw, result=result)
                for (i, raw), result in zip(self.pairs, self.future.result(), strict=True)]


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
                executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                               initializer=_die_with_parent, initargs=(os.getpid(),))
            except (OSError, ValueError):  # pragma: no cover - no fork here
                executor = None
        return cls(options, executor)

    def submit(self, pairs: list[tuple[int, bytes]]) -> Any:
        from concurrent.futures import Future

        if self.executor is not None:
            try:
                return _Parsed(self.executor.submit(_parse_raws, [raw for _, raw in pairs], self.options), pairs)
            except Exception:  # noqa: BLE001 - a broken pool: parse here instead
                log.warning("background parser unavailable; parsing in-process", exc_info=True)
                self.executor = None
        done: Future = Future()
        done.set_result(_parse_pairs(pairs, self.options))
        return done

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
