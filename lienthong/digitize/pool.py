"""The page pool: one single-threaded tesseract per core, kept alive between calls so a worker
process (or the CLI) pays the start-up once."""

from __future__ import annotations

import atexit
import multiprocessing as mp
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from lienthong.digitize.config import Ocr

_lock = threading.Lock()
_pool: tuple[tuple[str, int, str], Executor] | None = None


def _init_worker() -> None:
    import os

    os.environ["OMP_THREAD_LIMIT"] = "1"


def get_pool(ocr: Ocr) -> Executor:
    """The shared executor for ``ocr``'s settings (made on first use, replaced if they change)."""
    global _pool
    key = (ocr.executor, ocr.worker_count(), ocr.start_method)
    with _lock:
        if _pool is not None and _pool[0] == key:
            return _pool[1]
        if _pool is not None:
            _pool[1].shutdown(wait=True)
        ex: Executor
        if ocr.executor == "thread":
            ex = ThreadPoolExecutor(ocr.worker_count(), thread_name_prefix="ocr")
        else:
            ctx = mp.get_context(ocr.start_method)
            if ocr.start_method == "forkserver":
                ctx.set_forkserver_preload(["lienthong.digitize.ocr"])
            ex = ProcessPoolExecutor(ocr.worker_count(), mp_context=ctx, initializer=_init_worker)
        _pool = (key, ex)
        return ex


def reset_pool() -> None:
    """Drop the executor (after a worker died, or at exit)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool[1].shutdown(wait=False, cancel_futures=True)
            _pool = None


atexit.register(reset_pool)
