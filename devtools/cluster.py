"""A throwaway three-node RabbitMQ cluster on this host, for the cluster tests
and `./dev soak --cluster`.

Everything lives under one temporary directory: each node has its own
config, data, logs, PID file and ports, and the nodes share a cookie under a
HOME of their own. The scripts in /usr/lib/rabbitmq/bin are used directly:
Debian's /usr/sbin wrappers switch to the rabbitmq user, use the system
node's cookie and overwrite its startup logs. The system node on 5672 is
never addressed: every command names one of our nodes with `-n`.

Nodes are named `llt<pid>n<i>@localhost` after the process that started
them, so a later run can find and remove what a killed run left behind
(`reap_stale`). `teardown()` stops everything by PID file and by port; it
is registered with `atexit` too, for a run stopped with Ctrl-C.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from devtools.rabbit import pid_alive

SBIN = Path(os.environ.get("LEADLINE_RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
DIR_PREFIX = "leadline-cluster-"
# rabbitmqctl and friends take their own distribution port from this range,
# shared with every CLI call on the host: our nodes must not sit on it.
CLI_PORTS = range(35672, 35683)
BOOT_TIMEOUT = 120.0

T = TypeVar("T")


class ClusterError(RuntimeError):
    """The cluster could not be started or did not do what a command asked."""


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in CLI_PORTS and port not in taken:
            taken.add(port)
            return port




def _parallel(action: Callable[[T], Any], items: Iterable[T]) -> None:
    items = list(items)
    if not items:
        return
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        for future in [pool.submit(action, item) for item in items]:
            future.result()


@dataclass
class Node:
    index: int
    name: str
    amqp_port: int
    dist_port: int
    home: Path
    pid: int | None = None
    paused: bool = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def address(self) -> str:
        """`host:port`, as the broker's `node` metric label and log lines name it."""
        return f"127.0.0.1:{self.amqp_port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "beam.pid"

    def __str__(self) -> str:
        return f"{self.name} (:{self.amqp_port})"


@dataclass
class Cluster:
    """Three (or `size`) nodes; `start()` boots and joins them, `teardown()` removes them."""

    size: int = 3
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")))
    nodes: list[Node] = field(init=False)
    boot_seconds: float = field(init=False, default=0.0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _torn_down: bool = field(init=False, default=False)
    _children: set[subprocess.Popen[str]] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        taken: set[int] = set()
        tag = f"llt{os.getpid()}"
        self.nodes = [
            Node(i, f"{tag}n{i}@localhost", _free_port(taken), _free_port(taken), self.base / f"n{i}")
            for i in range(1, self.size + 1)
        ]
        atexit.register(self.teardown)

    # -- addresses ---------------------------------------------------------

    def amqp_url(self, nodes: Sequence[Node] | None = None) -> str:
        """The comma-separated `AMQP_URL` of `nodes` (default: all of them)."""
        return ",".join(n.url for n in (nodes if nodes is not None else self.nodes))

    def node_at(self, address: str | None) -> Node:
        """The node behind a `host:port` (as `Broker.node` reports it)."""
        for node in self.nodes:
            if node.address == address:
                return node
        raise ClusterError(f"no node of this cluster listens on {address!r}")

    def node_named(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node of this cluster is named {name!r}")

    def others(self, *nodes: Node) -> list[Node]:
        return [n for n in self.nodes if n not in nodes]

    # -- environment -------------------------------------------------------

    def _env(self, node: Node) -> dict[str, str]:
        home = self.base / "home"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # The server and the CLI read $HOME/.erlang.cookie.
            "HOME": str(home),
            # Our own env file: /etc/rabbitmq/rabbitmq-env.conf names the system node.
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.home / "advanced.config"),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_PID_FILE": str(node.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "enabled_plugins"),
        }

    def _write_files(self) -> None:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(os.urandom(20).hex())
            cookie.chmod(0o400)
        # Distribution on loopback only; schedulers that do not spin while idle,
        # so three idle nodes leave the two cores to the tests.
        (self.base / "rabbitmq-env.conf").write_text(
            'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} '
            '+sbwt none +sbwtdcpu none +sbwtdio none"\n')
        peers = "\n".join(f"cluster_formation.classic_config.nodes.{n.index} = {n.name}"
                          for n in self.nodes)
        for node in self.nodes:
            for sub in ("mnesia", "log"):
                (node.home / sub).mkdir(parents=True, exist_ok=True)
            (node.home / "enabled_plugins").write_text("[].\n")
            # A retry tier forwards expired leads to the work queue with publisher
            # confirms of its own (at-least-once dead-lettering); when the work
            # queue's leader dies mid-forward, the broker waits this long before
            # forwarding again (180 s by default on 3.10.8). The README says why 10 s.
            (node.home / "advanced.config").write_text(
                "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 10000}]}].\n")
            (node.home / "rabbitmq.conf").write_text(
                f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}\n"
                "cluster_formation.peer_discovery_backend = classic_config\n"
                f"{peers}\n"
                # The first node waits this long for peers before it starts alone.
                "cluster_formation.discovery_retry_limit = 2\n"
                "cluster_formation.discovery_retry_interval = 500\n"
                "log.console = false\n"
                "log.file.level = info\n")

    # -- commands ----------------------------------------------------------

    def ctl(self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 60.0,
            check: bool = True) -> str:
        """Run one of the broker's CLI tools against `node`; its stdout."""
        path = SBIN / tool
        if not path.exists():
            raise ClusterError(f"{path} is missing: the cluster tests need RabbitMQ's own scripts "
                               "(Debian's rabbitmq-server package); set LEADLINE_RABBITMQ_SBIN")
        returncode, stdout, stderr = self._run([str(path), "-n", node.name, *args], node, timeout,
                                               f"{tool} {' '.join(args)} on {node}")
        if check and returncode != 0:
            raise ClusterError(f"{tool} {' '.join(args)} on {node} failed ({returncode}): "
                               f"{(stderr or stdout).strip()[-800:]}")
        return stdout

    def _run(self, argv: list[str], node: Node, timeout: float, what: str,
             stdout: Any = subprocess.PIPE) -> tuple[int, str, str]:
        """Run a CLI tool or script; teardown kills it if it is still running then."""
        if self._torn_down:
            raise ClusterError(f"{what}: the cluster was torn down")
        proc = subprocess.Popen(argv, env=self._env(node), cwd=node.home, stdout=stdout,
                                stderr=subprocess.STDOUT if stdout is not subprocess.PIPE
                                else subprocess.PIPE, text=True)
        self._children.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise ClusterError(f"{what} took over {timeout:g}s") from exc
        finally:
            self._children.discard(proc)
        return proc.returncode, out or "", err or ""

    def ctl_json(self, node: Node, *args: str, tool: str = "rabbitmqctl", timeout: float = 60.0) -> Any:
        out = self.ctl(node, *args, "--formatter", "json", tool=tool, timeout=timeout)
        # The CLI may print warnings before the document.
        start = min((i for i in (out.find("["), out.find("{")) if i >= 0), default=-1)
        if start < 0:
            raise ClusterError(f"{tool} {' '.join(args)} on {node} printed no JSON: {out[-300:]!r}")
        return json.loads(out[start:])

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        """Boot the first node, then the others at once: they join it (classic_config).

        All three at once is slower on two cores: the first to take the peer
        discovery lock waits out its retries while the others boot.
        """
        reap_stale()
        began = time.monotonic()
        self._write_files()
        try:
            self.start_node(self.nodes[0])
            _parallel(self.start_node, self.nodes[1:])
            self.wait_clustered()
        except Exception:
            self.teardown()
            raise
        self.boot_seconds = time.monotonic() - began

    def start_node(self, node: Node) -> None:
        """Start `node` (again: same name, data and ports) and wait until it runs."""
        # A PID file left by a killed node would make `wait` watch a dead process.
        node.pid_file.unlink(missing_ok=True)
        with (node.home / "log" / "start.out").open("ab") as log:
            returncode, _, _ = self._run([str(SBIN / "rabbitmq-server"), "-detached"], node, 60,
                                         f"rabbitmq-server -detached for {node}", stdout=log)
        if returncode != 0:
            raise ClusterError(f"rabbitmq-server -detached for {node} exited with {returncode}: "
                               f"{self._log_tail(node)}")
        try:
            self.ctl(node, "wait", str(node.pid_file), "--timeout", str(int(BOOT_TIMEOUT)),
                     timeout=BOOT_TIMEOUT + 30)
        except ClusterError as exc:
            raise ClusterError(f"{exc}\n--- {node} log ---\n{self._log_tail(node)}") from None
        node.pid = int(node.pid_file.read_text().strip())
        node.paused = False

    def _log_tail(self, node: Node) -> str:
        texts = []
        for path in sorted((node.home / "log").glob("*")):
            with contextlib.suppress(OSError):
                texts.append(f"[{path.name}] " + path.read_text(errors="replace")[-1500:])
        return "\n".join(texts) or "(no log written)"

    def wait_clustered(self, timeout: float = 60.0) -> None:
        """Until every node reports every node running."""
        want = {n.name for n in self.nodes}
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while True:
            if self._torn_down:
                raise ClusterError("the cluster was torn down")
            with contextlib.suppress(ClusterError):
                seen = set(self.ctl_json(self.nodes[0], "cluster_status")["running_nodes"])
                if seen == want:
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"the nodes did not form one cluster in {timeout:g}s: "
                                   f"running {sorted(seen)}, want {sorted(want)}")
            time.sleep(0.5)

    def kill(self, node: Node, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to the node's VM: SIGKILL is a crash, SIGSTOP a hung node."""
        if node.pid is None:
            raise ClusterError(f"{node} is not running")
        os.kill(node.pid, sig)
        if sig == signal.SIGSTOP:
            node.paused = True
        elif sig == signal.SIGCONT:
            node.paused = False
        elif sig == signal.SIGKILL:
            self._wait_gone(node.pid, 10)
            node.pid = None
            node.paused = False

    def shutdown(self, node: Node) -> None:
        """A graceful stop of the whole node (its data stays)."""
        if node.pid is None:
            return
        if node.paused:
            self.kill(node, signal.SIGCONT)
        pid = node.pid
        with contextlib.suppress(ClusterError):
            self.ctl(node, "shutdown", timeout=60)
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not self._wait_gone(pid, 30):
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 10)
        node.pid = None

    def stop_app(self, node: Node) -> None:
        self.ctl(node, "stop_app")

    def start_app(self, node: Node) -> None:
        self.ctl(node, "start_app")

    def restart_all(self) -> None:
        """Every node stopped gracefully, then all started again."""
        _parallel(self.shutdown, self.nodes)
        _parallel(self.start_node, self.nodes)
        self.wait_clustered()

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if it is ours
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def teardown(self, graceful: bool = True) -> None:
        """Stop every node (gracefully if it answers, else by force) and remove the directory.

        `graceful=False` (after Ctrl-C) kills at once: a test thread waiting on a
        node's CLI then gets its answer and the run can end.
        """
        with self._lock:
            if self._torn_down:
                return
            self._torn_down = True
        for child in list(self._children):  # a CLI call waiting on a node: it would wait its timeout
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        for node in self.nodes:
            if node.pid is not None and node.paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGCONT)
        pids = [n.pid for n in self.nodes if n.pid is not None]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                # SIGTERM: the VM traps it and stops gracefully
                os.kill(pid, signal.SIGTERM if graceful else signal.SIGKILL)
        deadline = time.monotonic() + (15 if graceful else 5)
        for pid in pids:
            if not self._wait_gone(pid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # A node whose PID we lost (interrupted while it booted, or a failed second
        # start, which deletes the PID file): whatever listens on our ports with
        # our directory as its HOME (`-home` on the VM's command line).
        ports = {p for n in self.nodes for p in (n.amqp_port, n.dist_port)}
        for pid in _listeners(ports):
            if str(self.base) in _cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for node in self.nodes:
            node.pid = None
        shutil.rmtree(self.base, ignore_errors=True)
        with contextlib.suppress(ValueError):
            atexit.unregister(self.teardown)

    # -- state -------------------------------------------------------------

    def queues(self, vhost: str = "/", via: Node | None = None) -> list[dict[str, Any]]:
        """`list_queues` with each quorum queue's leader and members."""
        node = via or self._a_running_node()
        rows = self.ctl_json(node, "list_queues", "-p", vhost, "name", "type", "leader", "members",
                             "online", "messages", "messages_ready", "messages_unacknowledged",
                             "consumers", timeout=30)
        return list(rows)

    def leader_of(self, queue: str, vhost: str = "/") -> Node:
        for row in self.queues(vhost):
            if row.get("name") == queue and row.get("leader"):
                return self.node_named(str(row["leader"]))
        raise ClusterError(f"quorum queue {queue!r} has no leader now")

    def quorum_caught_up(self, queue: str, vhost: str = "/") -> bool:
        """Every member of `queue` is online and at the same commit index."""
        try:
            members = self.ctl_json(self._a_running_node(), "quorum_status", queue, "-p", vhost,
                                    tool="rabbitmq-queues", timeout=30)
        except ClusterError:
            return False
        if len(members) != self.size:
            return False
        commits = {m.get("Commit Index") for m in members}
        states = {str(m.get("Raft State")) for m in members}
        return len(commits) == 1 and None not in commits and "leader" in states \
            and states <= {"leader", "follower"}

    def wait_quorum_caught_up(self, queues: Iterable[str], vhost: str = "/", timeout: float = 60.0) -> None:
        """Until each quorum queue has every member running and at the same commit index."""
        pending = list(queues)
        deadline = time.monotonic() + timeout
        while pending:
            if self._torn_down:
                raise ClusterError("the cluster was torn down")
            pending = [q for q in pending if not self.quorum_caught_up(q, vhost)]
            if pending and time.monotonic() > deadline:
                raise ClusterError(f"quorum queues not caught up after {timeout:g}s: {pending}")
            if pending:
                time.sleep(0.3)

    def alarms(self) -> list[Any]:
        out = self.ctl_json(self._a_running_node(), "alarms", tool="rabbitmq-diagnostics")
        return list(out) if isinstance(out, list) else []

    def set_memory_alarm(self, node: Node) -> None:
        """A watermark far below what the node uses: a memory alarm, cluster-wide."""
        self.ctl(node, "set_vm_memory_high_watermark", "absolute", "10MB")

    def clear_memory_alarm(self, node: Node) -> None:
        self.ctl(node, "set_vm_memory_high_watermark", "0.4")

    def _a_running_node(self) -> Node:
        for node in self.nodes:
            if node.pid is not None and not node.paused:
                return node
        raise ClusterError("no node of the cluster is running")


def _listeners(ports: set[int]) -> list[int]:
    """PIDs of processes listening on any of `ports` (from `ss -ltnpH`)."""
    try:
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    pids: set[int] = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        port = fields[3].rsplit(":", 1)[-1]
        if port.isdigit() and int(port) in ports:
            pids.update(int(p) for p in re.findall(r"pid=(\d+)", line))
    return sorted(pids)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


_STALE_NAME = re.compile(r"^name (llt(\d+)n\d+) at port (\d+)$")


def reap_stale() -> list[str]:
    """Remove nodes and directories of earlier runs whose process is gone; what was removed."""
    removed: list[str] = []
    try:
        names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10,
                               check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        names = ""
    for line in names.splitlines():
        match = _STALE_NAME.match(line.strip())
        if not match or pid_alive(int(match.group(2))):
            continue
        for pid in _listeners({int(match.group(3))}):
            if f"{DIR_PREFIX}{match.group(2)}-" in _cmdline(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                removed.append(match.group(1))
    for path in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        owner = path.name[len(DIR_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed
