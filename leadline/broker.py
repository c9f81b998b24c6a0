"""The one component that owns a RabbitMQ connection.

aiormq has no reconnect loop, so this is ours, in the shape of aio-pika's
robust connection: connect, open a channel with publisher confirms, let the
owner declare what it needs (`on_channel`), then wait for the connection or
the channel to close and start again with a capped, jittered backoff. The
program starts while the broker is down; `connected` tells readiness.

`publish()` is the only way this project publishes: persistent properties
are the caller's job (see `leadline.message`), `mandatory` and the confirm
are this function's, and every way a publish can fail becomes
`PublishNotConfirmed` or `BrokerUnavailable` within `timeout` seconds.

A cluster: `url` may name several nodes, comma-separated. The loop starts at
a random one (clients spread over the nodes) and moves on to the next after
every failed connect or lost connection, with the same backoff; `node` says
where it is, and so do its log lines. What a cluster adds, each measured on
a three-node RabbitMQ 3.10 (tests/cluster/):

- A node that hangs (a paused VM, a partition) keeps the socket open and
  answers nothing. Every `PROBE_INTERVAL`, and at once after a publish timed
  out, the loop opens and closes a channel; no answer in `PROBE_TIMEOUT` and
  it leaves for the next node.
- During a memory or disk alarm the broker blocks every connection that
  publishes (Connection.Blocked): `blocked` says so, and `publish()` refuses
  at once instead of waiting for a confirm that cannot come. A blocked
  connection answers no RPC either, so it is not probed.
- A channel opened while a quorum queue has no leader can keep getting nacks
  after a new leader was elected; a fresh channel gets acks. So a nack retires
  the publishing channel and the next publish opens another on the same
  connection. The first channel stays: the owner's consumers live on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection
from aiormq.channel import Channel
from pamqp.commands import Basic

from leadline.config import amqp_urls, node_address, redact_url
from leadline.errors import BrokerUnavailable, PublishNotConfirmed

__all__ = ["Broker", "Unroutable", "backoff_delay", "connect_once", "redact_url"]

log = logging.getLogger("leadline.broker")

OnChannel = Callable[[AbstractChannel], Awaitable[None]]
OnState = Callable[[bool], None]
OnNode = Callable[[str | None], None]

DEFAULT_BACKOFF: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
# A connection that lived this long was healthy: the next loss starts the backoff afresh.
STABLE_SECONDS = 10.0
# How often an idle connection is asked whether its node still answers, and
# how long the answer may take. A false alarm costs one reconnect.
PROBE_INTERVAL = 5.0
PROBE_TIMEOUT = 3.0
# aiormq 7.2 keeps Connection.Blocked/Unblocked only in this private event,
# which its public `ready()` waits on. Read, never written; see `Broker.blocked`.
_UNBLOCKED_EVENT = "_Connection__connection_unblocked"

# Everything that means "this connection or channel is gone, try again later".
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.AMQPChannelError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)

CONNECT_ERRORS: tuple[type[Exception], ...] = (aiormq.exceptions.AMQPError, *TRANSIENT_ERRORS)
# aiormq raises RuntimeError for a channel asked of a closed connection.
_CHANNEL_OPEN_ERRORS: tuple[type[Exception], ...] = (*CONNECT_ERRORS, RuntimeError)


class Unroutable(PublishNotConfirmed):
    """The broker returned the publish: no queue is bound for its routing key."""


def backoff_delay(attempt: int, steps: Sequence[float] = DEFAULT_BACKOFF) -> float:
    """The wait before reconnect attempt `attempt` (0-based): the step, +-20% jitter."""
    base = steps[min(attempt, len(steps) - 1)]
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto


class Broker:
    """A self-healing connection with one confirming channel, on one node of a list."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        on_channel: OnChannel | None = None,
        on_state: OnState | None = None,
        on_node: OnNode | None = None,
        connect_timeout: float = 5.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        probe_interval: float = PROBE_INTERVAL,
        probe_timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._urls = amqp_urls(url)
        if not self._urls:
            raise ValueError("Broker needs at least one amqp:// URL")
        self._name = name
        self._on_channel = on_channel
        self._on_state = on_state
        self._on_node = on_node
        self._connect_timeout = connect_timeout
        self._backoff = tuple(backoff)
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        # Many clients starting at once should not all land on the first node.
        self._next = random.randrange(len(self._urls))  # noqa: S311 - spreading load, not crypto
        self._url: str | None = None
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._publish_channel: AbstractChannel | None = None
        self._publish_channel_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._probe_now = asyncio.Event()
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connects = 0  # how many times a connection came up; tests and metrics read it
        self.channels_replaced = 0  # publishing channels retired after a nack

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def nodes(self) -> tuple[str, ...]:
        """`host:port` of every node this broker may connect to, in the order given."""
        return tuple(node_address(u) for u in self._urls)

    @property
    def node(self) -> str | None:
        """`host:port` of the node connected to now, or None."""
        return node_address(self._url) if self._url is not None and self.connected else None

    @property
    def blocked(self) -> bool:
        """Whether RabbitMQ blocks this connection's publishing (a memory or disk alarm).

        The broker sends Connection.Blocked once a connection publishes while an
        alarm is on, and Connection.Unblocked when it clears. aiormq records them
        in a private event only; reading it is the least intrusive way to see
        them. Should a later aiormq rename it, this answers False and a publish
        still ends at its timeout (tests/leadline/test_broker.py guards the name).
        """
        connection = self._connection
        if connection is None or not self.connected:
            return False
        unblocked = getattr(connection, _UNBLOCKED_EVENT, None)
        return isinstance(unblocked, asyncio.Event) and not unblocked.is_set()

    @property
    def connection(self) -> AbstractConnection | None:
        """The live connection, if any: for side channels such as queue statistics."""
        return self._connection if self.connected else None

    @property
    def channel(self) -> AbstractChannel:
        """The live channel (the one `on_channel` set up), or `BrokerUnavailable`."""
        channel = self._channel
        if channel is None or channel.is_closed or not self.connected:
            raise BrokerUnavailable("not connected to RabbitMQ")
        return channel

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"broker:{self._name}")

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_quietly()
        for retiring in list(self._retiring):
            retiring.cancel()

    async def reconnect(self) -> None:
        """Drop the current connection; the loop brings a new one (on the next node)."""
        await self._close_quietly()

    async def publish(
        self,
        body: bytes,
        *,
        exchange: str,
        routing_key: str,
        properties: Basic.Properties,
        timeout: float,
    ) -> None:
        """Publish `mandatory` and wait for the broker's confirm, at most `timeout` s."""
        if self.blocked:
            raise PublishNotConfirmed("RabbitMQ is blocking publishers (a memory or disk alarm)")
        deadline = time.monotonic() + timeout
        channel = await self._publishing_channel(timeout)
        remaining = max(0.001, deadline - time.monotonic())
        try:
            # wait=False: do not hold the channel lock until the frame is on the
            # socket (a loop round trip per publish); the confirm below is what
            # tells the message is safe, and a lost write fails that confirm.
            # (`wait` is aiormq's Channel's, not in its abstract class.)
            confirmation = await cast(Channel, channel).basic_publish(
                body, exchange=exchange, routing_key=routing_key,
                properties=properties, mandatory=True, timeout=remaining, wait=False,
            )
        except aiormq.exceptions.PublishError as exc:
            raise Unroutable(f"unroutable: no queue bound for {routing_key!r}") from exc
        except aiormq.exceptions.DeliveryError as exc:
            # aiormq raises a broker's nack (a full queue, an internal error, a
            # queue without a leader) this way
            self._retire(channel)
            raise PublishNotConfirmed(f"the broker nacked the publish: {exc}") from exc
        except TimeoutError as exc:
            if self.blocked:
                raise PublishNotConfirmed(f"no confirm within {timeout:g}s: RabbitMQ is blocking "
                                          "publishers (a memory or disk alarm)") from exc
            self._probe_now.set()  # is the node still there?
            raise PublishNotConfirmed(f"no confirm within {timeout:g}s") from exc
        except TRANSIENT_ERRORS as exc:
            raise BrokerUnavailable(f"connection lost while publishing: {exc!r}") from exc
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this caller is being cancelled: not ours to swallow
            # aiormq cancels what waits on a connection that closed under it
            raise BrokerUnavailable("connection closed while publishing") from exc
        if not isinstance(confirmation, Basic.Ack):
            self._retire(channel)
            raise PublishNotConfirmed(f"broker answered {type(confirmation).__name__}")

    async def _publishing_channel(self, timeout: float) -> AbstractChannel:
        """The channel publishes go on: the owner's, until a nack retired it."""
        current = self._publish_channel
        if current is not None and not current.is_closed and self.connected:
            return current
        if self._channel is None or not self.connected:
            raise BrokerUnavailable("not connected to RabbitMQ")
        async with self._publish_channel_lock:
            current = self._publish_channel
            if current is not None and not current.is_closed:
                return current  # another publish opened it while this one waited
            connection = self._connection
            if connection is None:
                raise BrokerUnavailable("not connected to RabbitMQ")
            try:
                fresh = await asyncio.wait_for(connection.channel(publisher_confirms=True), timeout)
            except _CHANNEL_OPEN_ERRORS as exc:
                raise BrokerUnavailable(f"cannot open a channel to publish on: {_describe(exc)}") from exc
            if self._connection is not connection or not self.connected:
                self._close_later(fresh)
                raise BrokerUnavailable("the connection changed while opening a channel")
            self._publish_channel = fresh
            self.channels_replaced += 1
            log.info("broker: publishing on a fresh channel after a nack", extra={
                "broker": self._name, "node": self._node_text(), "replaced": self.channels_replaced})
            return fresh

    def _retire(self, channel: AbstractChannel) -> None:
        """No more publishes on `channel`; the next one opens a fresh channel."""
        if channel is not self._publish_channel:
            return  # an older channel's late nack: already replaced
        self._publish_channel = None
        if channel is not self._channel:
            self._close_later(channel)

    def _close_later(self, channel: AbstractChannel) -> None:
        async def close() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(channel.close(), 2.0)

        task = asyncio.create_task(close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            url = self._urls[self._next]
            try:
                await self._connect(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: wait, then try again
                await self._close_quietly()
                self._advance()
                delay = backoff_delay(failures, self._backoff)
                failures += 1
                log.warning("broker connect failed, retrying", extra={
                    "broker": self._name, "node": redact_url(url), "error": _describe(exc),
                    "next_node": redact_url(self._urls[self._next]), "retry_in_s": round(delay, 2)})
                await asyncio.sleep(delay)
                continue
            up_since = time.monotonic()
            await self._wait_closed()
            if self._stop_requested():
                break
            self._advance()
            # A connection that dies soon after it came up (a channel the broker
            # keeps closing, a consumer that keeps handing deliveries back) must
            # not turn into a tight reconnect loop: back off as for a failed connect.
            if time.monotonic() - up_since >= STABLE_SECONDS:
                failures = 0
            delay = backoff_delay(failures, self._backoff) if failures else 0.0
            failures += 1
            log.warning("broker connection lost, reconnecting", extra={
                "broker": self._name, "node": redact_url(url),
                "next_node": redact_url(self._urls[self._next]), "retry_in_s": round(delay, 2)})
            await asyncio.sleep(delay)

    def _advance(self) -> None:
        self._next = (self._next + 1) % len(self._urls)

    def _stop_requested(self) -> bool:
        # a method, not the attribute: stop() may set it while _wait_closed awaits
        return self._stopping

    def _node_text(self) -> str | None:
        return redact_url(self._url) if self._url is not None else None

    async def _connect(self, url: str) -> None:
        connection = await asyncio.wait_for(
            aiormq.connect(url, client_properties={"connection_name": self._name}),
            self._connect_timeout,
        )
        self._connection = connection
        self._url = url
        channel = await asyncio.wait_for(connection.channel(publisher_confirms=True),
                                         self._connect_timeout)
        if self._on_channel is not None:
            await asyncio.wait_for(self._on_channel(channel), self._connect_timeout)
        self._channel = channel
        self._publish_channel = channel
        self.connects += 1
        self._set_state(True)
        log.info("broker connected", extra={"broker": self._name, "node": redact_url(url),
                                            "connects": self.connects})

    async def _wait_closed(self) -> None:
        """Until the connection or its channel closes, or its node stops answering."""
        connection, channel = self._connection, self._channel
        assert connection is not None
        assert channel is not None
        waiters = [asyncio.ensure_future(f) for f in (connection.closing, channel.closing)]
        hung = False
        try:
            while True:
                poke = asyncio.ensure_future(self._probe_now.wait())
                try:
                    await asyncio.wait([*waiters, poke], timeout=self._probe_interval,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    poke.cancel()
                if any(w.done() for w in waiters) or self._stop_requested():
                    return
                self._probe_now.clear()
                if not await self._answers(connection):
                    hung = True
                    log.warning("broker node does not answer: leaving it", extra={
                        "broker": self._name, "node": self._node_text(),
                        "probe_timeout_s": self._probe_timeout})
                    return
        finally:
            for waiter in waiters:
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # mark retrieved
                else:
                    waiter.cancel()
            self._set_state(False)
            # A hung node will not answer the close either: do not wait for it.
            await self._close_quietly(grace=0.1 if hung else 2.0)

    async def _answers(self, connection: AbstractConnection) -> bool:
        """Whether the node still answers an RPC (a blocked connection counts as answering)."""
        if self.blocked:
            return True  # it reads nothing from us until the alarm clears: not a hang
        try:
            probe = await asyncio.wait_for(connection.channel(publisher_confirms=False),
                                           self._probe_timeout)
        except TimeoutError:
            return self.blocked
        except Exception:  # closed or closing: the closing futures say so
            return True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(probe.close(), self._probe_timeout)
        return True

    def _set_state(self, connected: bool) -> None:
        if connected == self._connected.is_set():
            return
        if connected:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_state is not None:
            self._on_state(connected)
        if self._on_node is not None:
            self._on_node(self.node)

    async def _close_quietly(self, grace: float = 2.0) -> None:
        self._set_state(False)
        connection, self._connection, self._channel = self._connection, None, None
        self._publish_channel = None
        if connection is not None and not connection.is_closed:
            # What still waits on it (a confirm) fails with a connection error,
            # not aiormq's default CancelledError that would cancel its caller.
            with contextlib.suppress(Exception):
                closed = aiormq.exceptions.ConnectionClosed(320, "closed by Leadline to reconnect or stop")
                await asyncio.wait_for(connection.close(closed), grace)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


async def connect_once(url: str, *, name: str, timeout: float = 5.0) -> AbstractConnection:
    """One connection for a command-line tool: each node in turn, then one clear line."""
    failures: list[str] = []
    for one in amqp_urls(url):
        try:
            return await asyncio.wait_for(
                aiormq.connect(one, client_properties={"connection_name": name}), timeout
            )
        except CONNECT_ERRORS as exc:
            failures.append(f"{redact_url(one)}: {_describe(exc)}")
    raise BrokerUnavailable("cannot reach RabbitMQ at " + "; ".join(failures or [redact_url(url)]))
