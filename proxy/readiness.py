"""Whether every process of this proxy takes submissions, for `/readyz`.

With `PROXY_WORKERS` above one, the kernel hands each new connection to any of
the processes sharing the port. One that is still connecting to RabbitMQ (at
start, or after it died and was replaced) answers its share of submissions
with 503. A load balancer or an orchestrator asks `/readyz` of whichever
process the kernel picks, so each must answer for all: ready only when every
process holds a broker connection.

The processes share one byte each in an anonymous shared mapping that the
parent makes before it forks. A process writes only its own byte, when its
broker connection comes up or goes; the parent clears a dead child's byte
before it starts the replacement. One byte written by one process needs no
lock.
"""

from __future__ import annotations

import mmap

_DOWN, _UP = 0, 1


class Readiness:
    """One byte per proxy process, shared across a fork."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError("a proxy has at least one process")
        self.processes = processes
        # An anonymous mapping is MAP_SHARED: the children's writes are the parent's.
        self._bytes = mmap.mmap(-1, processes)

    def slot(self, index: int) -> Slot:
        """The view one process has: its own byte to write, all of them to read."""
        if not 0 <= index < self.processes:
            raise IndexError(f"no proxy process {index} of {self.processes}")
        return Slot(self, index)

    def set(self, index: int, connected: bool) -> None:
        self._bytes[index] = _UP if connected else _DOWN

    def clear(self, index: int) -> None:
        """The process in this slot is gone: it takes nothing until its replacement connects."""
        self.set(index, False)

    def connected(self) -> int:
        """How many of the processes hold a broker connection now."""
        return self._bytes[:].count(_UP)


class Slot:
    """A process's own byte of a `Readiness`."""

    def __init__(self, table: Readiness, index: int) -> None:
        self._table = table
        self.index = index

    @property
    def processes(self) -> int:
        return self._table.processes

    def set(self, connected: bool) -> None:
        self._table.set(self.index, connected)

    def connected(self) -> int:
        return self._table.connected()


def single_process() -> Slot:
    """A proxy of one process: its readiness is its own."""
    return Readiness(1).slot(0)
