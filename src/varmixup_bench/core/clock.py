"""A clock that does not run while the process is stopped (SIGSTOP / SIGCONT, a suspended job, a frozen
container), for every measured duration: the seconds of an epoch, an evaluation or a campaign pass are the time
the process could run, not the time it was held. A daemon thread wakes every BEAT seconds; a wake-up later than
BEAT + GRACE means every thread was frozen, and that gap counts as stopped. Starvation on a busy machine delays
a wake-up by milliseconds, not seconds, so it is not counted: a measured duration still shows contention, as it
should. A C call that held the GIL for longer than GRACE would be counted as a stop too (none of the timed
loops does: torch releases the GIL in its kernels)."""
from __future__ import annotations

import threading
import time

BEAT = 0.2  # seconds between the detector's wake-ups
GRACE = 1.5  # a wake-up this much later than due is a stop, not a slow scheduler or a long-held GIL


class StopDetector:
    """Sums the seconds the process was stopped, from the gaps between a daemon thread's wake-ups."""

    def __init__(self, beat: float = BEAT, grace: float = GRACE) -> None:
        self.beat, self.grace = beat, grace
        self._lock = threading.Lock()
        self._stopped = 0.0
        self._last = time.monotonic()
        self._thread: threading.Thread | None = None
        self._running = 0.0  # the last running time handed out: readings never go back

    def _run(self) -> None:
        while True:
            time.sleep(self.beat)
            with self._lock:
                now = time.monotonic()
                gap = now - self._last - self.beat
                if gap > self.grace:
                    self._stopped += gap
                self._last = now

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._last = time.monotonic()
                self._thread = threading.Thread(target=self._run, name="varmixup-bench-stop-detector", daemon=True)
                self._thread.start()

    def stopped(self, now: float | None = None) -> float:
        """Seconds stopped so far, including a stop the thread has not woken from yet (read right after SIGCONT)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            pending = now - self._last - self.beat
            return self._stopped + (pending if pending > self.grace else 0.0)


    def running(self, now: float | None = None) -> float:
        """Monotonic seconds less the stopped ones, never below an earlier reading (a wake-up that turns out late
        enough to be a stop only after a reading counted it as running does not move the clock back)."""
        now = time.monotonic() if now is None else now
        value = now - self.stopped(now)
        with self._lock:
            self._running = max(self._running, value)
            return self._running


_DETECTOR = StopDetector()  # one per process: every clock reading shares its thread


def running_time() -> float:
    """Monotonic seconds that do not advance while the process is stopped; differences of two readings are
    durations (as time.perf_counter's). The first call starts the detector: a stop before it is not seen."""
    _DETECTOR.start()
    return _DETECTOR.running()


def stopped_time() -> float:
    """Seconds this process has been stopped since the detector started (differences: stops within a span)."""
    _DETECTOR.start()
    return _DETECTOR.stopped()
