"""How many lines go into each block a part is cut into.

The scoring workers take blocks in turn, so two moments waste them: the start, when every worker waits
for a full chunk to be read and parsed, and the end, when one worker scores a full last chunk while the
others have nothing left. So a part starts with short blocks (1/8, 1/4, 1/2 of the chunk size), runs at
the chunk size, and shrinks its blocks towards the end (guided scheduling: each block takes a share of
the lines estimated to be left, down to 1/8 of a chunk).

The lines left are estimated from the bytes left and the average line length so far. The estimate only
shapes block sizes; which lines are read never depends on it, and no block exceeds the chunk size.
"""

from __future__ import annotations

import math

RAMP = (8, 4, 2)  # the first blocks are chunk_rows // 8, // 4, // 2
SMALLEST = 8  # the tail's blocks shrink down to chunk_rows // 8


class BlockSizes:
    def __init__(self, chunk_rows: int, workers: int = 1, total_bytes: int = 0, adaptive: bool = True):
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.chunk_rows = chunk_rows
        self.workers = max(1, workers)
        self.total_bytes = total_bytes
        self.adaptive = adaptive
        self.smallest = max(1, chunk_rows // SMALLEST)
        self._ramp = [max(1, chunk_rows // d) for d in RAMP] if adaptive else []

    @classmethod
    def fixed(cls, chunk_rows: int) -> BlockSizes:
        """Every block chunk_rows lines (the last one takes what is left)."""
        return cls(chunk_rows, adaptive=False)

    def next(self, bytes_done: int, lines_done: int) -> int:
        """Lines for the next block, given the bytes and lines of the blocks already cut."""
        if self._ramp:
            return self._ramp.pop(0)
        if not self.adaptive or self.total_bytes <= 0 or lines_done == 0 or bytes_done == 0:
            return self.chunk_rows  # no estimate of the end
        lines_left = max(0, self.total_bytes - bytes_done) * lines_done / bytes_done
        share = math.ceil(lines_left / (2 * self.workers))
        return min(self.chunk_rows, max(self.smallest, share))
