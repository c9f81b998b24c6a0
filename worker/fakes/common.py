"""What every vendor fake shares: the knobs, the record of calls, the rolling
window, and the request pipeline that applies them in one fixed order.

Per API request: auth (401) -> rate limit / quota -> `down` (503) ->
`fail_rate` (the vendor's 5xx) -> the endpoint's own logic -> `latency_ms`
-> for a successful write at `timeout_rate`, `hang_seconds` of silence
(the CRM stored it; the caller never hears). Paths under `/_` are the
fake's own inspection and control endpoints: no auth, no limits, no
failures, not recorded.

The window is rolling and counted at arrival: a request is accepted while
fewer than `count` accepted requests arrived within the last `per_seconds`
(an arrival exactly `per_seconds` ago still counts: the stricter reading);
refused requests do not count.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from enum import Enum
from typing import Any, Generic, TypeVar

import orjson
from aiohttp import web

from leadline.config import Rate, parse_rate
from leadline.errors import ConfigError

DEFAULT_TOKEN = "test-token"  # noqa: S105 - the fake's own test credential
DEFAULT_REJECT_DOMAIN = "reject.test"
DEFAULT_HANG_SECONDS = 120.0
CLIENT_MAX_SIZE = 4 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Parser = Callable[[str, Any], Any]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(frozen=True)
class Knobs:
    """The knobs every fake has; each vendor's config inherits them."""

    token: str = DEFAULT_TOKEN
    rate_limit: Rate | None = None
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    down: bool = False
    timeout_rate: float = 0.0
    hang_seconds: float = DEFAULT_HANG_SECONDS
    reject_domain: str = DEFAULT_REJECT_DOMAIN


@dataclass
class Call:
    """One API call as the fake saw it. `status` 0: not decided yet;
    `finished` None: not answered (yet, or never: the caller gave up)."""

    method: str
    path: str
    arrived: float
    status: int = 0
    finished: float | None = None
    records: int = 0


@dataclass
class Stats:
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)  # by record kind
    updated: dict[str, int] = field(default_factory=dict)
    rate_limited: int = 0  # answered 429
    hung: int = 0  # written, then answered `hang_seconds` late
    records_sent: int = 0  # records carried by all calls (batch inputs)

    def count(self, bucket: dict[str, int], kind: str, n: int = 1) -> None:
        bucket[kind] = bucket.get(kind, 0) + n


class Refusal(Enum):
    WINDOW = "window"  # the rolling window is full
    DAILY = "daily"  # the daily allocation is spent


class RollingWindow:
    """Arrival times of the accepted requests still inside the window."""

    def __init__(self) -> None:
        self.arrivals: deque[float] = deque()

    def _prune(self, rate: Rate, now: float) -> None:
        while self.arrivals and self.arrivals[0] < now - rate.per_seconds:
            self.arrivals.popleft()

    def admit(self, rate: Rate, now: float) -> bool:
        self._prune(rate, now)
        if len(self.arrivals) >= rate.count:
            return False
        self.arrivals.append(now)
        return True

    def remaining(self, rate: Rate, now: float) -> int:
        self._prune(rate, now)
        return max(0, rate.count - len(self.arrivals))

    def frees_in(self, rate: Rate, now: float) -> float:
        """Seconds until the oldest accepted request leaves the window (0: empty)."""
        self._prune(rate, now)
        return max(0.0, self.arrivals[0] + rate.per_seconds - now) if self.arrivals else 0.0

    def clear(self) -> None:
        self.arrivals.clear()


# --- knob parsers: each takes the knob's name and a Python or JSON value ---

def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def share(name: str, value: Any) -> float:
    number = _number(name, value)
    if not 0 <= number <= 1:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return number


def non_negative(name: str, value: Any) -> float:
    number = _number(name, value)
    if number < 0 or math.isinf(number):
        raise ValueError(f"{name} must be a finite number of at least 0, got {value!r}")
    return number


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of at least 0, got {value!r}")
    return value


def optional_count(name: str, value: Any) -> int | None:
    return None if value is None else count(name, value)


def string_set(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of strings, got {value!r}")
    items = list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{name} must be a list of non-empty strings, got {value!r}")
    return frozenset(items)


def rate(name: str, value: Any) -> Rate | None:
    """A `Rate`, `"100/10s"`, `{"count": 100, "per_seconds": 10}`, or None / `"off"`."""
    if value is None or isinstance(value, Rate):
        if isinstance(value, Rate) and (value.count < 1 or not value.per_seconds > 0):
            raise ValueError(f"{name} needs a count of at least 1 over a window longer than 0")
        return value
    if isinstance(value, str):
        try:
            return parse_rate(name, value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    if isinstance(value, Mapping) and set(value) == {"count", "per_seconds"}:
        return rate(name, Rate(count(name, value["count"]), non_negative(name, value["per_seconds"])))
    raise ValueError(f"{name} must be a rate such as \"100/10s\", or null, got {value!r}")


KNOB_PARSERS: dict[str, Parser] = {
    "token": text, "rate_limit": rate, "latency_ms": non_negative, "fail_rate": share,
    "down": boolean, "timeout_rate": share, "hang_seconds": non_negative, "reject_domain": text,
}


def format_rate(value: Rate) -> str | dict[str, float]:
    """The spelling `rate()` reads back: `"100/10s"`, or an object for odd windows."""
    if value.per_seconds == int(value.per_seconds):
        return f"{value.count}/{int(value.per_seconds)}s"
    return {"count": value.count, "per_seconds": value.per_seconds}


def plain(value: Any) -> Any:
    """Config values as JSON-ready data."""
    if isinstance(value, Rate):
        return format_rate(value)
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        as_json = getattr(value, "as_json", None)
        return as_json() if callable(as_json) else plain(asdict(value))
    return value


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=plain)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json",
                        headers=headers)


INVALID: Any = object()  # what `read_json` returns for a body that is not JSON


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or `INVALID` when it is not JSON at all."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return INVALID


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def email_domain(value: str) -> str:
    return value.rpartition("@")[2].lower()


def iso_now() -> str:
    """UTC, millisecond precision, `Z`: the shape HubSpot and Salesforce print."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


C = TypeVar("C", bound=Knobs)


class FakeState(Generic[C]):
    """The live state of one fake. Vendors subclass it: they add the records
    and the vendor-shaped answers (the hooks at the bottom)."""

    #: statuses `fail_rate` picks from
    fail_statuses: tuple[int, ...] = (503,)
    #: extra knob parsers of the vendor, by knob name
    parsers: Mapping[str, Parser] = {}

    def __init__(self, config: C, *, seed: int | None = None) -> None:
        # Two generators, so that the failure pattern depends only on the calls
        # made, not on how many ids or shuffles the answers needed.
        self.rng = random.Random(seed)  # noqa: S311 - fault injection, not crypto
        self.data_rng = random.Random(None if seed is None else seed + 1)  # noqa: S311
        self.calls: list[Call] = []
        self.stats = Stats()
        self.window = RollingWindow()
        self.daily_used = 0
        self.writes: frozenset[Handler] = frozenset()  # handlers subject to timeout_rate
        self.public: frozenset[Handler] = frozenset()  # handlers that need no token
        self.clear_records()
        self.config = self._checked(config, {f.name: getattr(config, f.name) for f in fields(config)})
        self.seed_records()

    # --- config ---

    def configure(self, **changes: Any) -> None:
        """Validate and apply knob changes; an unknown knob or a bad value is a ValueError."""
        self.config = self._checked(self.config, changes)
        self.seed_records()

    def _checked(self, config: C, changes: Mapping[str, Any]) -> C:
        parsers = {**KNOB_PARSERS, **self.parsers}
        unknown = sorted(set(changes) - set(parsers))
        if unknown:
            raise ValueError(f"unknown knob {unknown[0]!r}; the knobs are {', '.join(sorted(parsers))}")
        parsed = {name: parsers[name](name, value) for name, value in changes.items()}
        checked = replace(config, **parsed)
        self.check(checked)
        return checked

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.data_rng.getrandbits(128), version=4))

    def config_json(self) -> dict[str, Any]:
        return {f.name: plain(getattr(self.config, f.name)) for f in fields(self.config)}

    def reset(self) -> None:
        """Records, calls, stats, window and daily usage cleared; config kept."""
        self.calls.clear()
        self.stats = Stats()
        self.window.clear()
        self.daily_used = 0
        self.clear_records()
        self.seed_records()

    # --- the gate ---

    def admit(self, now: float) -> Refusal | None:
        """Count this request against the daily allocation and the window, or refuse it."""
        daily = self.daily_limit()
        if daily is not None and self.daily_used >= daily:
            return Refusal.DAILY
        limit = self.config.rate_limit
        if limit is not None and not self.window.admit(limit, now):
            return Refusal.WINDOW
        self.daily_used += 1
        return None

    def window_remaining(self, now: float) -> int | None:
        limit = self.config.rate_limit
        return None if limit is None else self.window.remaining(limit, now)

    def window_frees_in(self, now: float) -> float:
        limit = self.config.rate_limit
        return 0.0 if limit is None else self.window.frees_in(limit, now)

    def daily_remaining(self) -> int | None:
        daily = self.daily_limit()
        return None if daily is None else max(0, daily - self.daily_used)

    # --- hooks for the vendor ---

    def check(self, config: C) -> None:
        """Rules across knobs; raise ValueError."""

    def seed_records(self) -> None:
        """After start, a config change and a reset: create the records the knobs
        imply (HubSpot's conflicting contacts, Salesforce's duplicates). Idempotent."""

    def clear_records(self) -> None:
        raise NotImplementedError

    def records_json(self) -> Any:
        raise NotImplementedError

    def stored(self) -> dict[str, int]:
        """How many records of each kind are stored now."""
        raise NotImplementedError

    def daily_limit(self) -> int | None:
        return None

    def authorized(self, request: web.Request) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> web.Response:
        raise NotImplementedError

    def refused(self, refusal: Refusal, now: float) -> web.Response:
        raise NotImplementedError

    def unavailable(self, status: int) -> web.Response:
        raise NotImplementedError

    def http_error(self, exc: web.HTTPException) -> web.Response:
        """aiohttp's own refusals (unknown path 404, method 405, body too large
        413) in the vendor's body."""
        raise NotImplementedError

    def limit_headers(self, now: float) -> dict[str, str]:
        """Headers every authenticated answer carries."""
        return {}

    def records_in(self, handler: Handler, body: Any) -> int:
        """How many records a write carries (batch inputs); counted even when
        the call is refused before its handler runs."""
        return 1


def pipeline(key: web.AppKey[Any]) -> Any:
    """The middleware that puts every API call through the fixed order."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):
            return await handler(request)
        state: FakeState[Any] = request.app[key]
        return await _serve(state, request, handler)

    return middleware


async def _serve(state: FakeState[Any], request: web.Request, handler: Handler) -> web.StreamResponse:
    now = time.monotonic()
    call = Call(request.method, request.path, arrived=now)
    state.calls.append(call)
    state.stats.requests += 1
    config = state.config
    route_handler = request.match_info.handler
    unreadable: web.HTTPException | None = None  # a body too large to read
    if route_handler in state.writes:
        # Counted at arrival, so a refused batch still says what it carried;
        # aiohttp keeps the body for the handler to read again.
        try:
            body = await read_json(request)
        except web.HTTPException as exc:
            unreadable, body = exc, INVALID
        call.records = state.records_in(route_handler, body)
    public = route_handler in state.public
    authenticated = public or state.authorized(request)
    hang = False
    response: web.StreamResponse
    if not authenticated:
        response = state.unauthorized()
    else:
        refusal = None if public else state.admit(now)
        if refusal is not None:
            response = state.refused(refusal, now)
        elif config.down:
            response = state.unavailable(503)
        elif config.fail_rate > 0 and state.rng.random() < config.fail_rate:
            response = state.unavailable(state.rng.choice(state.fail_statuses))
        else:
            try:
                if unreadable is not None:
                    raise unreadable
                response = await handler(request)
            except web.HTTPException as exc:
                response = state.http_error(exc)
            hang = (route_handler in state.writes and response.status < 300
                    and config.timeout_rate > 0 and state.rng.random() < config.timeout_rate)
        if not public:
            response.headers.update(state.limit_headers(now))
    call.status = response.status
    state.stats.count(state.stats.by_status, str(response.status))
    state.stats.records_sent += call.records
    if response.status == 429:
        state.stats.rate_limited += 1
    if config.latency_ms > 0:
        await asyncio.sleep(config.latency_ms / 1000)
    if hang:
        state.stats.hung += 1
        await asyncio.sleep(config.hang_seconds)
    call.finished = time.monotonic()
    return response


def add_control_routes(app: web.Application, key: web.AppKey[Any]) -> None:
    """`GET /_state`, `/_calls`, `/_stats`; `POST /_config`, `/_reset`."""

    async def get_state(request: web.Request) -> web.Response:
        return json_response(request.app[key].records_json())

    async def get_calls(request: web.Request) -> web.Response:
        return json_response([asdict(call) for call in request.app[key].calls])

    async def get_stats(request: web.Request) -> web.Response:
        state = request.app[key]
        return json_response({**asdict(state.stats), "stored": state.stored(),
                              "daily_used": state.daily_used})

    async def post_config(request: web.Request) -> web.Response:
        state = request.app[key]
        changes = await read_json(request)
        if not isinstance(changes, dict):
            return json_response({"error": "the body must be a JSON object of knob changes"}, 400)
        try:
            state.configure(**changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(state.config_json())

    async def get_config(request: web.Request) -> web.Response:
        return json_response(request.app[key].config_json())

    async def post_reset(request: web.Request) -> web.Response:
        request.app[key].reset()
        return json_response({"status": "reset"})

    app.router.add_get("/_state", get_state)
    app.router.add_get("/_calls", get_calls)
    app.router.add_get("/_stats", get_stats)
    app.router.add_get("/_config", get_config)
    app.router.add_post("/_config", post_config)
    app.router.add_post("/_reset", post_reset)


def new_app(key: web.AppKey[Any], state: FakeState[Any]) -> web.Application:
    app = web.Application(middlewares=[pipeline(key)], client_max_size=CLIENT_MAX_SIZE)
    app[key] = state
    add_control_routes(app, key)
    return app
