"""Single submissions gathered into bulk jobs.

A worker pays RQ's cost per job (a dozen round trips, measured in docs/BENCHMARKS.md) whatever
the job carries, so a scraper that submits page by page (``Client.submit``, one document per
API request) made the workers spend most of their time on RQ. A :class:`Gatherer` holds such
documents for a short delay (``submit_delay``) and sends them together, ``batch_size`` at most
per job: the first document starts the delay, a full batch leaves at once.

Each batch's job id is chosen when its first document arrives, so a submission is told the
job it travels in before the job exists; :attr:`Gathered.sent` completes once the job is
queued (or fails with the reason). Nothing waits in memory past :meth:`Gatherer.close`, which
sends what is left.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dedup.errors import StoreError

Payload = dict[str, Any]
Send = Callable[[list[Payload], str], object]
"""Enqueues one job of these documents under this job id, or raises StoreError."""
RETRY_PAUSE = 1.0
"""Seconds before a batch kept after a failed send is tried again."""


@dataclass
class _Batch:
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    payloads: list[Payload] = field(default_factory=list)
    sent: Future[str] = field(default_factory=Future)
    due: float = 0.0


@dataclass(frozen=True)
class Gathered:
    """One document handed to a :class:`Gatherer`."""

    job_id: str
    """The job the document travels in."""
    sent: Future[str]
    """Completes with the job id once the job is queued, or with the StoreError that kept it
    from being queued."""


class Gatherer:
    """Collects single documents and sends them as jobs of up to ``size``, each at most
    ``delay`` seconds after its first document arrived.

    Args:
        send: enqueues a job (documents, job id); raises StoreError when it cannot.
        size: most documents in one job.
        delay: seconds a batch waits for more documents.
        keep_failed: when a send fails, keep the batch and send it again later (for callers
            that were told their document is on its way); otherwise the failure is the
            batch's answer and its documents are dropped (for callers that wait for it).
    """

    def __init__(self, send: Send, size: int, delay: float, *, keep_failed: bool) -> None:
        self._send = send
        self._size = size
        self._delay = delay
        self._keep_failed = keep_failed
        self._lock = threading.Condition()
        self._sending = threading.Lock()
        """Held while a batch is sent, so batches leave in order, one at a time."""
        self._open: _Batch | None = None
        self._ready: list[_Batch] = []
        self._failure: StoreError | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def waiting(self) -> int:
        """Documents taken and waiting for their batch to leave (not those being sent)."""
        with self._lock:
            batches = self._ready + ([self._open] if self._open else [])
            return sum(len(b.payloads) for b in batches)

    def add(self, payload: Payload) -> Gathered:
        """Take one document; it leaves with its batch.

        Raises:
            StoreError: the last batch kept could not be sent (Redis is unreachable); this
                document is not taken.
        """
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._closed:
                raise StoreError("the submitter is closed")
            batch = self._open
            wake = batch is None  # the thread sets its timer by the new batch
            if batch is None:
                batch = self._open = _Batch(due=time.monotonic() + self._delay)
            batch.payloads.append(payload)
            if len(batch.payloads) >= self._size:
                self._ready.append(batch)
                self._open = None
                wake = True
            self._start()
            if wake:
                self._lock.notify()
            return Gathered(batch.job_id, batch.sent)

    def flush(self) -> None:
        """Send every batch now, in this thread.

        Raises:
            StoreError: a batch could not be sent (kept for a later try when ``keep_failed``).
        """
        with self._lock:
            self._take_open()
            self._failure = None
        self._send_ready(raise_errors=True)

    def hurry(self, within: float = 0.0) -> None:
        """Let the waiting batch leave now from the background thread (it does not block: for
        a process about to stop too), or ``within`` seconds at the latest, never later than
        its delay. Not from a signal handler: it takes the lock that the interrupted code may
        hold."""
        with self._lock:
            if within <= 0:
                self._take_open()
            elif self._open is not None:
                self._open.due = min(self._open.due, time.monotonic() + within)
            self._lock.notify()

    def close(self) -> None:
        """Send what is left and stop the background thread; later documents are refused."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        try:
            self.flush()
        finally:
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=self._delay + 5)

    def _start(self) -> None:
        """Start the thread that sends batches when they are due (once, on first use)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dedup-gatherer", daemon=True)
            self._thread.start()

    def _take_open(self) -> None:
        if self._open is not None:
            self._ready.append(self._open)
            self._open = None

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._ready:
                    if self._open is not None and time.monotonic() >= self._open.due:
                        self._take_open()
                        break
                    due = self._open.due - time.monotonic() if self._open else None
                    self._lock.wait(timeout=due)
                if self._closed:
                    return
            if not self._send_ready(raise_errors=False):
                time.sleep(RETRY_PAUSE)

    def _send_ready(self, *, raise_errors: bool) -> bool:
        """Send the batches ready, in order; False when one failed."""
        with self._sending:
            while True:
                with self._lock:
                    if not self._ready:
                        return True
                    batch = self._ready.pop(0)
                try:
                    self._send(batch.payloads, batch.job_id)
                except StoreError as exc:
                    self._failed(batch, exc)
                    if raise_errors:
                        raise
                    return False
                except Exception as exc:  # not Redis: sending it again would fail again
                    batch.sent.set_exception(exc)
                    if raise_errors:
                        raise
                    continue
                with self._lock:
                    self._failure = None  # Redis is back: submissions are taken again
                batch.sent.set_result(batch.job_id)

    def _failed(self, batch: _Batch, error: StoreError) -> None:
        """Keep the batch for a later try, or make the failure its answer."""
        with self._lock:
            if self._keep_failed:
                self._ready.insert(0, batch)
                self._failure = error
                return
        batch.sent.set_exception(error)
