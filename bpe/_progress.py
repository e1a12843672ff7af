"""The progress bar the long operations draw on stderr (training, encoding files)."""

from __future__ import annotations

import sys
import time


class Bar:
    """A one-line progress bar on stderr:
    ``merging [#####.....] 1,024/3,840 merges 0.4 s, 2,560.0 merges/s, 1 s left``.

    Without a known total it shows the count and the rate. It redraws at most ten times a
    second, and clears the rest of the line (a shorter line leaves nothing behind).
    """

    WIDTH = 30

    def __init__(self, label: str, enabled: bool, total: int | None = None, unit: str = "",
                 scale: float = 1.0, also: str = ""):
        self.label, self.enabled, self.total, self.unit, self.scale = label, enabled, total, unit, scale
        self.also = also  # a second count shown with its rate (counting: "pieces")
        self.start = time.perf_counter()
        self.last = 0.0
        self.done = 0
        self.also_done = 0

    def __call__(self, done: int, force: bool = False, also: int | None = None) -> None:
        self.done = done
        if also is not None:
            self.also_done = also
        now = time.perf_counter()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        self.last = now
        shown = f"{done / self.scale:,.1f}" if self.scale != 1 else f"{done:,}"
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        per_s = f", {rate / self.scale:,.1f} {self.unit}/s" if rate else ""
        left = ""
        if self.total:
            filled = min(self.WIDTH, int(self.WIDTH * done / self.total))
            bar = "[" + "#" * filled + "." * (self.WIDTH - filled) + "] "
            total = f"{self.total / self.scale:,.1f}" if self.scale != 1 else f"{self.total:,}"
            shown = f"{bar}{shown}/{total}"
            if rate and done < self.total:
                left = f", {(self.total - done) / rate:,.0f} s left"
        if self.also and elapsed > 0:
            left += f"; {self.also_done:,} {self.also}, {self.also_done / elapsed:,.0f} {self.also}/s"
        print(f"\r{self.label} {shown} {self.unit} {elapsed:.1f} s{per_s}{left}\033[K", end="", file=sys.stderr,
              flush=True)

    def close(self, done: int | None = None, also: int | None = None) -> None:
        if self.enabled:
            self(self.done if done is None else done, force=True, also=also)
            print(file=sys.stderr)
