"""The one way a process sets up its logs: a line per record with time, level and logger, and
repeated client-library noise collapsed.

While the broker is away, aiokafka logs the same few errors ("Unable connect to node...", "Unable to
update metadata...", "Failed fetch messages...") tens of times a second per client, which buries
what an operator needs to see. `RepeatFilter` lets the first record of each (logger, level,
message template) through, drops the repeats for `window_s`, and then lets the next one through
with the count of what it dropped. Nothing of ours is filtered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("aiokafka",)


class RepeatFilter(logging.Filter):
    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (last let through, dropped)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(NOISY):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            last, dropped = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.window_s:
                self._seen[key] = (last, dropped + 1)
                return False
            self._seen[key] = (now, 0)
        if dropped:
            record.msg = f"{record.msg} [{dropped} more like this in the last {self.window_s:.0f} s]"
        return True


def configure_logging(level: str | int = "INFO", *, window_s: float = 30.0) -> None:
    """Root handler and format (unless the process has one already, e.g. from uvicorn --log-config),
    and the repeat filter on the root handlers (a logger's own filters do not see its children's
    records, and aiokafka logs from many). Idempotent."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=FORMAT)
    for handler in root.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(window_s))
