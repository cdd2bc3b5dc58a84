"""Running a source in a thread of its own, feeding the agent's bounded sample queue."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from edge.sources import Sample, Source

log = logging.getLogger(__name__)

_PUT_TIMEOUT_S = 0.1
_PAUSE_S = 0.05


class SourceRunner:
    """Pulls samples from one source into the queue until the source ends or ``stop`` is set.

    A full queue blocks the thread, and so the source (back-pressure); so does
    ``paused()`` returning true (the spool is past its high-water mark).
    """

    def __init__(
        self,
        source: Source,
        samples: queue.Queue[Sample],
        stop: threading.Event,
        paused: Callable[[], bool],
    ) -> None:
        self.source = source
        self.samples_queued = 0  # written by this runner's thread only
        self.failed = False
        self._queue = samples
        self._stop = stop
        self._paused = paused
        self._thread = threading.Thread(
            target=self._run, name=f"edge-source-{source.name}", daemon=True
        )

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to end; True if it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        """True once the source has ended (or failed, or was stopped)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def _run(self) -> None:
        name = self.source.name
        log.info("source %s started", name)
        iterator = self.source.samples(self._stop)
        try:
            for sample in iterator:
                if not self._put(sample):
                    break
        except Exception:
            self.failed = True
            log.exception("source %s failed; the other sources carry on", name)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        log.info("source %s ended after %d samples", name, self.samples_queued)

    def _put(self, sample: Sample) -> bool:
        stop = self._stop
        while self._paused():
            if stop.wait(_PAUSE_S):
                return False
        while True:
            try:
                self._queue.put(sample, timeout=_PUT_TIMEOUT_S)
            except queue.Full:
                if stop.is_set():
                    return False
                continue
            self.samples_queued += 1
            return not stop.is_set()
