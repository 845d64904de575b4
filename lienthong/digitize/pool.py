"""The page pool: one single-threaded tesseract per core, kept alive between calls so a worker
process (or the CLI) pays the start-up once.

With the ``forkserver`` start method the pool's workers come from a server process that has
imported the page reader (numpy, PIL, pytesseract) once. :func:`start` launches that server before
the parent has finished its own start-up, so the two load their modules on different cores; the
parent itself never imports numpy or pypdf for image files.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from lienthong.digitize.config import Ocr

# What every page worker needs; a fork server imports it once for all its workers.
PRELOAD = ["lienthong.digitize.ocr"]

_lock = threading.Lock()
_pool: tuple[tuple[str, int, str], Executor] | None = None


def _init_worker() -> None:
    import os

    os.environ["OMP_THREAD_LIMIT"] = "1"


def start_server(start_method: str) -> None:
    """Start the fork server now (it loads :data:`PRELOAD` in the background); no-op otherwise."""
    if start_method != "forkserver":
        return
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


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
                start_server("forkserver")
            elif ocr.start_method == "fork":
                # Forked workers inherit what the parent has loaded: load it once, here.
                import importlib

                for module in PRELOAD:
                    importlib.import_module(module)
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
