"""Pre-forked proxy processes sharing one port (`PROXY_WORKERS`, `--workers`).

One Python process serves at most one core. With N workers the parent forks
N children before any event loop exists; each opens its own listening socket
with SO_REUSEPORT (the kernel spreads new connections over them), its own
broker connection and its own metrics. The parent only supervises:

- SIGTERM or SIGINT: it passes SIGTERM on (each child finishes its requests
  and closes its broker connection), waits up to `stop_timeout`, kills what
  is left, and exits 0 when every child stopped cleanly.
- A child that dies is started again; one that keeps dying within seconds of
  its start (or exits with the configuration error code) makes the parent stop
  the others and exit 1 rather than spin.
- No orphans: each child asks the kernel for SIGTERM when its parent dies
  (PR_SET_PDEATHSIG), so even a SIGKILLed parent leaves nothing behind.

The parent waits for signals with `sigtimedwait` (they stay blocked in it), so
there is no handler racing the bookkeeping.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("leadline.proxy.workers")

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_PR_SET_PDEATHSIG = 1
# A child exiting sooner than this after its start counts as a failed start.
FAST_FAILURE_SECONDS = 2.0
MAX_FAST_FAILURES = 5


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, never-listening SO_REUSEPORT socket: it fails fast when the port
    is taken by someone else, and fixes the port number when `port` is 0."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class _Child:
    slot: int
    pid: int
    started: float


class Supervisor:
    """Runs `serve` in `count` forked children until SIGTERM/SIGINT."""

    def __init__(self, count: int, serve: Callable[[int], int], *, stop_timeout: float,
                 fast_failure_seconds: float = FAST_FAILURE_SECONDS,
                 max_fast_failures: int = MAX_FAST_FAILURES, fatal_exit_codes: frozenset[int] = frozenset(),
                 on_exit: Callable[[int, int], None] = lambda pid, slot: None) -> None:
        self.count = count
        self._serve = serve
        self._stop_timeout = stop_timeout
        self._fast_failure_seconds = fast_failure_seconds
        self._max_fast_failures = max_fast_failures
        self._fatal = fatal_exit_codes
        # A child's pid and slot once it is gone, before its replacement starts: its
        # shared metrics and its readiness byte, say.
        self._on_exit = on_exit
        self._children: dict[int, _Child] = {}
        self._fast_failures = 0
        self._mask: set[signal.Signals | int] = set()

    def run(self) -> int:
        """The exit code for the parent: 0 after a clean stop, 1 otherwise."""
        self._mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for slot in range(self.count):
                self._spawn(slot)
            log.info("proxy workers started", extra={
                "workers": self.count, "pids": sorted(self._children)})
            while True:
                info = signal.sigtimedwait(_SIGNALS, 1.0)
                if info is not None and info.si_signo != signal.SIGCHLD:
                    log.info("proxy stopping", extra={"signal": signal.Signals(info.si_signo).name})
                    return self._stop()
                if not self._restart_the_dead():
                    self._stop()
                    return 1
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)

    @property
    def pids(self) -> list[int]:
        return sorted(self._children)

    def _spawn(self, slot: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: never return into the parent's code
            code = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, self._mask)
                _die_with_parent(parent)
                code = self._serve(slot)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # the child's last words, then out
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    logging.shutdown()
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self._children[pid] = _Child(slot, pid, time.monotonic())

    def _reap(self) -> list[tuple[_Child, int]]:
        """Children that exited since the last look, with their exit codes."""
        gone: list[tuple[_Child, int]] = []
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self._children.pop(pid, None)
            if child is not None:
                gone.append((child, os.waitstatus_to_exitcode(status)))
                with contextlib.suppress(Exception):
                    self._on_exit(pid, child.slot)
        return gone

    def _restart_the_dead(self) -> bool:
        """Start a new child for each one that died; False: give up."""
        for child, code in self._reap():
            lived = time.monotonic() - child.started
            fast = lived < self._fast_failure_seconds
            self._fast_failures = self._fast_failures + 1 if fast else 0
            fields = {"pid": child.pid, "slot": child.slot, "exit_code": code,
                      "lived_s": round(lived, 2)}
            if code in self._fatal or self._fast_failures >= self._max_fast_failures:
                log.error("proxy worker keeps failing, stopping", extra=fields)
                return False
            log.warning("proxy worker died, starting another", extra=fields)
            if fast:
                time.sleep(min(1.0, 0.1 * 2 ** self._fast_failures))
            self._spawn(child.slot)
        return True

    def _stop(self) -> int:
        clean = True
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while self._children:
            for _child, code in self._reap():
                # -SIGTERM: it died of the signal we sent before it set up its handler
                clean = clean and code in (0, -signal.SIGTERM)
            left = deadline - time.monotonic()
            if not self._children or left <= 0:
                break
            signal.sigtimedwait({signal.SIGCHLD}, min(left, 0.5))
        for pid in list(self._children):
            log.error("proxy worker did not stop in time, killing it", extra={"pid": pid})
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self._children[pid]
            clean = False
        return 0 if clean else 1


def _die_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent goes; exit now if it already went."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
