"""A dependency-free progress bar for long loops, written to standard error."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Show ``done/total``, rate and time left; on a non-terminal, print a line every ``every`` seconds."""

    def __init__(self, total: int, label: str, enabled: bool = True, every: float = 30.0, stream=None):
        self.total, self.label, self.enabled, self.every = max(total, 1), label, enabled, every
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, count: int = 1, suffix: str = "") -> None:
        self.done += count
        now = time.monotonic()
        if not self.enabled or (now - self.last < (0.2 if self.tty else self.every) and self.done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(30 * self.done / self.total)
        line = (f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                f"{rate:.1f}/s, {left:.0f}s left {suffix}")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
