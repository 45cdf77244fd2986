"""Micro-batching: concurrent requests are scored together by one worker thread.

Why: on the CPU the model scores a batch of 64 images several times faster than 64 single
calls, and a web server mostly sees single-image requests. Each request puts its images on a
queue and waits on one future per image; the worker takes the first waiting image, gathers more
until it has `max_batch` or `max_wait_s` has passed, and calls `predict_batch` once for them
all. Inference never runs on the event loop, and a request never waits for another request's
whole batch to be scored one by one.

Limits (docs/serve-limits.md): the queue holds at most `max_pending` images (a request that
would overflow it gets `Overloaded`, answered 503 with Retry-After, instead of waiting behind a
flood); a caller waits at most until its deadline (then its images are dropped from the queue
if not yet scored, and it gets `Overloaded` too). `ExplainQueue` does the same for Grad-CAM,
which runs one at a time in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

log = logging.getLogger("fakescope.serve")

Row = dict[str, Any]
_STOP = object()


class NamedBytes(bytes):
    """An upload's bytes carrying its file name: `Detector` names a row by `image.filename`
    (as for a PIL image), so the row's `path` is the name the client sent."""

    filename: str

    def __new__(cls, data: bytes | bytearray, filename: str) -> NamedBytes:
        obj = super().__new__(cls, data)
        obj.filename = filename
        return obj


class Overloaded(Exception):
    """The server cannot take this work now (queue full, or the time budget ran out): 503 with
    a Retry-After of `retry_after_s` (the queue's recent pace times what is waiting)."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.message, self.retry_after_s = message, max(1, math.ceil(retry_after_s))


def deadline(seconds: float | None) -> float | None:
    """A monotonic deadline `seconds` from now (None: no time limit)."""
    return None if seconds is None else time.monotonic() + seconds


def _left(when: float | None) -> float | None:
    return None if when is None else max(0.0, when - time.monotonic())


class _Pace:
    """Recent seconds per unit of work (an exponential moving average), for Retry-After."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def add(self, seconds: float, units: int = 1) -> None:
        per = seconds / max(units, 1)
        self.seconds = per if not self.seconds else 0.8 * self.seconds + 0.2 * per


class BatchWorker:
    """One thread that scores queued images in micro-batches through `predict_batch`; at most
    `max_pending` images wait or are being scored (None: no bound)."""

    def __init__(
        self,
        predict_batch: Callable[[list[Any]], list[Row]],
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_pending: int | None = None,
    ):
        self.predict_batch, self.max_batch, self.max_wait_s = predict_batch, max_batch, max_wait_s
        self.max_pending = max_pending
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fakescope-batch", daemon=True)
        self._stopped = False
        self._lock = threading.Lock()
        self._pending = 0  # images queued or being scored: taken in by submit, not yet answered
        self.pace = _Pace()
        # counters for /healthz and the tests (batches/images: written by the worker thread)
        self.batches = self.images = self.largest_batch = 0
        self.refused = self.timed_out = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, fail anything still queued, and join the thread."""
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._pending

    def _retry_after(self) -> float:
        return self._pending * self.pace.seconds

    def submit(self, images: Sequence[Any], until: float | None = None) -> list[Future]:
        """Queue images; one future per image, resolved with its row. `Overloaded` when they
        would take the queue over `max_pending`, or when at the queue's recent pace they would
        not be scored by `until` (refused now rather than after waiting in vain). An empty
        queue always takes a request, so that one larger than the bound is still served."""
        if self._stopped:
            raise RuntimeError("the batch worker has stopped")
        with self._lock:
            wait = (self._pending + len(images)) * self.pace.seconds
            full = self.max_pending is not None and self._pending + len(images) > self.max_pending
            late = until is not None and time.monotonic() + wait > until
            if (full or late) and self._pending:
                self.refused += 1
                why = f"limit {self.max_pending}" if full else f"about {wait:.0f} s to wait"
                raise Overloaded(
                    f"server busy: {self._pending} images already queued or being scored "
                    f"({why}); retry later",
                    self._retry_after(),
                )
            self._pending += len(images)
        futures: list[Future] = []
        for image in images:
            fut: Future = Future()
            self._queue.put((image, fut))
            futures.append(fut)
        return futures

    async def score(self, images: Sequence[Any], until: float | None = None) -> list[Row]:
        """Rows for `images`, in their order, without blocking the event loop; `Overloaded`
        when the queue is full or the rows are not ready by `until` (a `deadline`)."""
        futures = self.submit(images, until)
        waiting = asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        try:
            return list(await asyncio.wait_for(waiting, _left(until)))
        except TimeoutError:
            # cancelled above: images not yet taken by the worker are dropped, unscored
            self.timed_out += 1
            raise Overloaded(
                "server busy: scoring did not finish within the request time limit; retry later",
                self._retry_after(),
            ) from None

    def _release(self, n: int = 1) -> None:
        with self._lock:
            self._pending -= n

    # ---- worker thread ----------------------------------------------------------------------

    def _gather(self, first: tuple) -> tuple[list[tuple], bool]:
        """The first job plus whatever arrives within max_wait_s, up to max_batch. A job whose
        request went away (its future cancelled) is dropped here, before it costs anything."""
        batch = [first] if first[1].set_running_or_notify_cancel() else []
        if not batch:
            self._release()
        stop = False
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                # drain what is already queued without waiting, then wait out the deadline
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is _STOP:
                stop = True
                break
            if job[1].set_running_or_notify_cancel():
                batch.append(job)
            else:
                self._release()  # its request gave up: dropped unscored
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is _STOP:
                break
            batch, stop = self._gather(job)
            if batch:
                self._score(batch)
        # anything queued after the stop signal (a request racing shutdown) gets an error
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and job[1].set_running_or_notify_cancel():
                job[1].set_exception(RuntimeError("server shutting down"))
        log.info("batch worker stopped after %d images in %d batches", self.images, self.batches)

    def _score(self, batch: list[tuple]) -> None:
        images = [image for image, _ in batch]
        t0 = time.perf_counter()
        try:
            rows = self.predict_batch(images)
        except Exception:  # noqa: BLE001 - isolate the failure to the image that causes it
            log.exception("batch of %d failed; scoring its images one by one", len(images))
            rows = [self._score_alone(image) for image in images]
        self.pace.add(time.perf_counter() - t0, len(images))
        self.batches += 1
        self.images += len(images)
        self.largest_batch = max(self.largest_batch, len(images))
        for (_, fut), row in zip(batch, rows, strict=True):
            fut.set_result(row)  # running futures cannot be cancelled any more
        self._release(len(batch))

    def _score_alone(self, image: Any) -> Row:
        try:
            return self.predict_batch([image])[0]
        except Exception as e:  # noqa: BLE001 - one row with the reason, never a 500
            log.exception("scoring %s failed", getattr(image, "filename", "<image>"))
            name = getattr(image, "filename", "<image>")
            return {"path": name, "prob_fake": None, "label": None, "error": f"internal error: {e}"}


class ExplainQueue:
    """Grad-CAM calls in a one-thread pool, at most `limit` waiting or running (a Grad-CAM of
    a photo takes seconds: without a bound, 12 calls at once all waited and the last one for
    half a minute). A request takes its place first (`slot`: `Overloaded` at once when none is
    free), before anything else is spent on it, and keeps it until its heatmap is done."""

    def __init__(self, executor: Executor, limit: int | None = None):
        self.executor, self.limit = executor, limit
        self._lock = threading.Lock()
        self.in_flight = self.refused = self.timed_out = 0
        self.pace = _Pace()

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[_Slot]:
        with self._lock:
            if self.limit is not None and self.in_flight >= self.limit:
                self.refused += 1
                raise Overloaded(
                    f"server busy: {self.in_flight} explanations already queued or running "
                    f"(limit {self.limit}); retry later",
                    self.in_flight * self.pace.seconds,
                )
            self.in_flight += 1
        s = _Slot(self)
        try:
            yield s
        finally:
            if not s.handed_over:  # never reached the thread: its place is free again
                self._done()

    async def run(self, fn: Callable[[Any], Any], arg: Any, until: float | None = None) -> Any:
        """`fn(arg)` in the pool, in a slot of its own."""
        async with self.slot() as s:
            return await s.run(fn, arg, until)


class _Slot:
    """One place in an ExplainQueue; `run` hands it to the thread, which frees it when done."""

    def __init__(self, queue: ExplainQueue):
        self.queue, self.handed_over = queue, False

    async def run(self, fn: Callable[[Any], Any], arg: Any, until: float | None = None) -> Any:
        q = self.queue

        def work() -> Any:
            t0 = time.perf_counter()
            try:
                return fn(arg)
            finally:
                q.pace.add(time.perf_counter() - t0)
                q._done()

        fut = q.executor.submit(work)
        self.handed_over = True
        # a call cancelled before it started never runs work(): release its place here
        fut.add_done_callback(lambda f: q._done() if f.cancelled() else None)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), _left(until))
        except TimeoutError:
            q.timed_out += 1  # a call already running finishes in its thread, holding its place
            raise Overloaded(
                "server busy: the explanation did not finish within the request time limit",
                q.in_flight * q.pace.seconds,
            ) from None
