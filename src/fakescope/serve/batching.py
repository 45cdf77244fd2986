"""Micro-batching: concurrent requests are scored together by one worker thread.

Why: on the CPU the model scores a batch of 64 images several times faster than 64 single
calls, and a web server mostly sees single-image requests. Each request puts its images on a
queue and waits on one future per image; the worker takes the first waiting image, gathers more
until it has `max_batch` or `max_wait_s` has passed, and calls `predict_batch` once for them
all. Inference never runs on the event loop, and a request never waits for another request's
whole batch to be scored one by one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
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


class BatchWorker:
    """One thread that scores queued images in micro-batches through `predict_batch`."""

    def __init__(
        self,
        predict_batch: Callable[[list[Any]], list[Row]],
        max_batch: int = 64,
        max_wait_s: float = 0.005,
    ):
        self.predict_batch, self.max_batch, self.max_wait_s = predict_batch, max_batch, max_wait_s
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="fakescope-batch", daemon=True)
        self._stopped = False
        # counters for /healthz and the tests (written by the worker thread only)
        self.batches = self.images = self.largest_batch = 0

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
        return self._queue.qsize()

    def submit(self, images: Sequence[Any]) -> list[Future]:
        """Queue images; one future per image, resolved with its row."""
        if self._stopped:
            raise RuntimeError("the batch worker has stopped")
        futures: list[Future] = []
        for image in images:
            fut: Future = Future()
            self._queue.put((image, fut))
            futures.append(fut)
        return futures

    async def score(self, images: Sequence[Any]) -> list[Row]:
        """Rows for `images`, in their order, without blocking the event loop."""
        futures = self.submit(images)
        return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))

    # ---- worker thread ----------------------------------------------------------------------

    def _gather(self, first: tuple) -> tuple[list[tuple], bool]:
        """The first job plus whatever arrives within max_wait_s, up to max_batch. A job whose
        request went away (its future cancelled) is dropped here, before it costs anything."""
        batch = [first] if first[1].set_running_or_notify_cancel() else []
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
        try:
            rows = self.predict_batch(images)
        except Exception:  # noqa: BLE001 - isolate the failure to the image that causes it
            log.exception("batch of %d failed; scoring its images one by one", len(images))
            rows = [self._score_alone(image) for image in images]
        self.batches += 1
        self.images += len(images)
        self.largest_batch = max(self.largest_batch, len(images))
        for (_, fut), row in zip(batch, rows, strict=True):
            fut.set_result(row)  # running futures cannot be cancelled any more

    def _score_alone(self, image: Any) -> Row:
        try:
            return self.predict_batch([image])[0]
        except Exception as e:  # noqa: BLE001 - one row with the reason, never a 500
            log.exception("scoring %s failed", getattr(image, "filename", "<image>"))
            name = getattr(image, "filename", "<image>")
            return {"path": name, "prob_fake": None, "label": None, "error": f"internal error: {e}"}
