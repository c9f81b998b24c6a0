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

from leadline.errors import BrokerUnavailable, PublishNotConfirmed

log = logging.getLogger("leadline.broker")

OnChannel = Callable[[AbstractChannel], Awaitable[None]]
OnState = Callable[[bool], None]

DEFAULT_BACKOFF: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
# A connection that lived this long was healthy: the next loss starts the backoff afresh.
STABLE_SECONDS = 10.0

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


def backoff_delay(attempt: int, steps: Sequence[float] = DEFAULT_BACKOFF) -> float:
    """The wait before reconnect attempt `attempt` (0-based): the step, +-20% jitter."""
    base = steps[min(attempt, len(steps) - 1)]
    return base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not crypto


class Broker:
    """A self-healing connection with one confirming channel."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        on_channel: OnChannel | None = None,
        on_state: OnState | None = None,
        connect_timeout: float = 5.0,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
    ) -> None:
        self._url = url
        self._name = name
        self._on_channel = on_channel
        self._on_state = on_state
        self._connect_timeout = connect_timeout
        self._backoff = tuple(backoff)
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connects = 0  # how many times a connection came up; tests and metrics read it

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connection(self) -> AbstractConnection | None:
        """The live connection, if any: for side channels such as queue statistics."""
        return self._connection if self.connected else None

    @property
    def channel(self) -> AbstractChannel:
        """The live channel, or `BrokerUnavailable`."""
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

    async def reconnect(self) -> None:
        """Drop the current connection; the loop brings a new one."""
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
        channel = self.channel
        try:
            # wait=False: do not hold the channel lock until the frame is on the
            # socket (a loop round trip per publish); the confirm below is what
            # tells the message is safe, and a lost write fails that confirm.
            # (`wait` is aiormq's Channel's, not in its abstract class.)
            confirmation = await cast(Channel, channel).basic_publish(
                body, exchange=exchange, routing_key=routing_key,
                properties=properties, mandatory=True, timeout=timeout, wait=False,
            )
        except aiormq.exceptions.PublishError as exc:
            raise PublishNotConfirmed(f"unroutable: no queue bound for {routing_key!r}") from exc
        except aiormq.exceptions.DeliveryError as exc:
            # aiormq raises a broker's nack (a full queue, an internal error) this way
            raise PublishNotConfirmed(f"the broker nacked the publish: {exc}") from exc
        except TimeoutError as exc:
            raise PublishNotConfirmed(f"no confirm within {timeout:g}s") from exc
        except TRANSIENT_ERRORS as exc:
            raise BrokerUnavailable(f"connection lost while publishing: {exc!r}") from exc
        if not isinstance(confirmation, Basic.Ack):
            raise PublishNotConfirmed(f"broker answered {type(confirmation).__name__}")

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure means: wait, then try again
                await self._close_quietly()
                delay = backoff_delay(failures, self._backoff)
                failures += 1
                log.warning("broker connect failed, retrying", extra={
                    "broker": self._name, "error": _describe(exc), "retry_in_s": round(delay, 2)})
                await asyncio.sleep(delay)
                continue
            up_since = time.monotonic()
            await self._wait_closed()
            if self._stop_requested():
                break
            # A connection that dies soon after it came up (a channel the broker
            # keeps closing, a consumer that keeps handing deliveries back) must
            # not turn into a tight reconnect loop: back off as for a failed connect.
            if time.monotonic() - up_since >= STABLE_SECONDS:
                failures = 0
            delay = backoff_delay(failures, self._backoff) if failures else 0.0
            failures += 1
            log.warning("broker connection lost, reconnecting", extra={
                "broker": self._name, "retry_in_s": round(delay, 2)})
            await asyncio.sleep(delay)

    def _stop_requested(self) -> bool:
        # a method, not the attribute: stop() may set it while _wait_closed awaits
        return self._stopping

    async def _connect(self) -> None:
        connection = await asyncio.wait_for(
            aiormq.connect(self._url, client_properties={"connection_name": self._name}),
            self._connect_timeout,
        )
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        if self._on_channel is not None:
            await asyncio.wait_for(self._on_channel(channel), self._connect_timeout)
        self._channel = channel
        self.connects += 1
        self._set_state(True)
        log.info("broker connected", extra={"broker": self._name, "connects": self.connects})

    async def _wait_closed(self) -> None:
        connection, channel = self._connection, self._channel
        assert connection is not None
        assert channel is not None
        waiters = [asyncio.ensure_future(f) for f in (connection.closing, channel.closing)]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # mark retrieved
                else:
                    waiter.cancel()
            self._set_state(False)
            await self._close_quietly()

    def _set_state(self, connected: bool) -> None:
        if connected == self._connected.is_set():
            return
        if connected:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_state is not None:
            self._on_state(connected)

    async def _close_quietly(self) -> None:
        self._set_state(False)
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


async def connect_once(url: str, *, name: str, timeout: float = 5.0) -> AbstractConnection:
    """One connection for a command-line tool: fail fast, with one clear line."""
    try:
        return await asyncio.wait_for(
            aiormq.connect(url, client_properties={"connection_name": name}), timeout
        )
    except CONNECT_ERRORS as exc:
        where = redact_url(url)
        raise BrokerUnavailable(f"cannot reach RabbitMQ at {where}: {_describe(exc)}") from exc


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
