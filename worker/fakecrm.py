"""A CRM stand-in: `python -m worker.fakecrm --port P [--fail-rate F] [--timeout-rate F]
[--latency-ms N] [--reject-domain D] [--vendor webhook|hubspot|salesforce|pipedrive]`.

`POST /leads` stores each lead once per Idempotency-Key. It answers 422 for
the reject domain, 503 at `--fail-rate`, and at `--timeout-rate` it stores the
lead and then answers too late (the nastiest real case: the CRM has it, the
caller does not know). `HEAD /leads` is what the worker probes a paused CRM
with. Inspection: `GET /_leads`, `GET /_stats`, `GET /_calls`; control:
`POST /_reset`, `POST /_config` (any of fail_rate, timeout_rate, latency_ms,
reject_domain, hang_seconds, `down` (every call 503, probes too),
`fail_domain` (leads from that domain always 503: a lead that fails alone),
`refuse_auth` (every call 401, probes too: credentials revoked) and
`rate_limit` ("5/1s": a rolling window at arrival; over it, 429 with
Retry-After))
so a test can take the CRM down and bring it back. `create_app()` builds the
same app for in-process use.

`--vendor hubspot|salesforce|pipedrive` serves the fake of that vendor's API
instead (`worker.fakes`), with the same knobs plus `--rate-limit COUNT/WINDOW`
(default: the vendor's lowest plan; `off`) and `--token TOKEN`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from leadline.config import Rate, parse_rate
from leadline.errors import ConfigError
from worker.fakes import VENDORS

DEFAULT_PORT = 8090
DEFAULT_REJECT_DOMAIN = "reject.test"
DEFAULT_HANG_SECONDS = 120.0


@dataclass
class Behaviour:
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    reject_domain: str = DEFAULT_REJECT_DOMAIN
    hang_seconds: float = DEFAULT_HANG_SECONDS  # how late "too late" is
    down: bool = False  # every call, probes too, answers 503
    fail_domain: str = ""  # leads from this e-mail domain always answer 503
    refuse_auth: bool = False  # every call, probes too, answers 401
    rate_limit: str = ""  # "5/1s": over it, 429 with Retry-After; "" for none


@dataclass
class Stats:
    requests: int = 0
    created: int = 0
    duplicates: int = 0
    failed: int = 0  # answered 503 on purpose
    probes: int = 0  # HEAD /leads
    rejected: int = 0  # answered 422 (reject domain) or 400 (no key / not JSON)
    late: int = 0  # stored, then answered too late
    rate_limited: int = 0  # answered 429
    unauthorized: int = 0  # answered 401


@dataclass
class FakeCrm:
    behaviour: Behaviour = field(default_factory=Behaviour)
    stats: Stats = field(default_factory=Stats)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    arrivals: deque[float] = field(default_factory=deque)

    def reset(self) -> None:
        self.stats = Stats()
        self.leads.clear()
        self.calls.clear()
        self.arrivals.clear()

    def gate(self) -> web.Response | None:
        """401 when refusing credentials, 429 over the rolling window, else None."""
        b = self.behaviour
        if b.refuse_auth:
            self.stats.unauthorized += 1
            return _json({"error": "invalid credentials"}, 401)
        rate = parse_rate("rate_limit", b.rate_limit) if b.rate_limit else None
        if rate is None:
            return None
        now = time.monotonic()
        while self.arrivals and self.arrivals[0] < now - rate.per_seconds:
            self.arrivals.popleft()
        if len(self.arrivals) >= rate.count:
            self.stats.rate_limited += 1
            wait = self.arrivals[0] + rate.per_seconds - now
            return web.Response(status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))},
                                body=b'{"error":"too many requests"}', content_type="application/json")
        self.arrivals.append(now)
        return None


CRM_KEY = web.AppKey("fakecrm", FakeCrm)


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def post_lead(request: web.Request) -> web.Response:
    crm = request.app[CRM_KEY]
    b = crm.behaviour
    crm.stats.requests += 1
    key = request.headers.get("Idempotency-Key", "")
    call: dict[str, Any] = {"id": key, "at": time.time(), "status": 0}
    crm.calls.append(call)
    refused = crm.gate()
    if refused is not None:
        call["status"] = refused.status
        return refused
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        payload = None
    if not key or not isinstance(payload, dict):
        crm.stats.rejected += 1
        call["status"] = 400
        return _json({"error": "need an Idempotency-Key and a JSON object"}, 400)
    if b.latency_ms > 0:
        await asyncio.sleep(b.latency_ms / 1000)
    lead = payload.get("lead")
    email = str(lead.get("email", "")) if isinstance(lead, dict) else ""
    domain = email.rpartition("@")[2].lower()
    if b.down or (b.fail_rate > 0 and crm.rng.random() < b.fail_rate) or (
            b.fail_domain and domain == b.fail_domain.lower()):
        crm.stats.failed += 1
        call["status"] = 503
        return _json({"error": "temporarily unavailable"}, 503)
    if email.rpartition("@")[2].lower() == b.reject_domain.lower():
        crm.stats.rejected += 1
        call["status"] = 422
        return _json({"error": f"leads from {b.reject_domain} are refused"}, 422)
    created = key not in crm.leads
    if created:
        crm.stats.created += 1
        crm.leads[key] = {**payload, "id": key, "traceparent": request.headers.get("traceparent")}
    else:
        crm.stats.duplicates += 1
    if b.timeout_rate > 0 and crm.rng.random() < b.timeout_rate:
        crm.stats.late += 1
        call["status"] = -1  # stored, answer withheld
        await asyncio.sleep(b.hang_seconds)
    call["status"] = 201 if created else 200
    return _json({"id": key, "created": created}, call["status"])


async def probe(request: web.Request) -> web.Response:
    """`HEAD /leads`: up, unless down or unlucky."""
    crm = request.app[CRM_KEY]
    b = crm.behaviour
    crm.stats.probes += 1
    refused = crm.gate()
    if refused is not None:
        return web.Response(status=refused.status, headers=refused.headers)
    if b.latency_ms > 0:
        await asyncio.sleep(b.latency_ms / 1000)
    if b.down or (b.fail_rate > 0 and crm.rng.random() < b.fail_rate):
        return web.Response(status=503)
    return web.Response(status=204)


async def get_leads(request: web.Request) -> web.Response:
    return _json(list(request.app[CRM_KEY].leads.values()))


async def get_stats(request: web.Request) -> web.Response:
    crm = request.app[CRM_KEY]
    return _json({**asdict(crm.stats), "stored": len(crm.leads)})


async def get_calls(request: web.Request) -> web.Response:
    return _json(request.app[CRM_KEY].calls)


async def reset(request: web.Request) -> web.Response:
    request.app[CRM_KEY].reset()
    return _json({"status": "reset"})


async def configure(request: web.Request) -> web.Response:
    crm = request.app[CRM_KEY]
    try:
        changes = orjson.loads(await request.read())
        if not isinstance(changes, dict):
            raise TypeError("a JSON object")
        merged = {**asdict(crm.behaviour), **changes}
        crm.behaviour = Behaviour(**merged)
        _check(crm.behaviour)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        return _json({"error": str(exc)}, 400)
    return _json(asdict(crm.behaviour))


def _check(b: Behaviour) -> None:
    for name in ("fail_rate", "timeout_rate"):
        value = getattr(b, name)
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be between 0 and 1")
    if not isinstance(b.latency_ms, int | float) or b.latency_ms < 0:
        raise ValueError("latency_ms must be at least 0")
    if b.rate_limit:
        try:
            parse_rate("rate_limit", b.rate_limit)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def create_app(behaviour: Behaviour | None = None, *, seed: int | None = None) -> web.Application:
    crm = FakeCrm(behaviour=behaviour or Behaviour(), rng=random.Random(seed))  # noqa: S311 - fault injection
    _check(crm.behaviour)
    app = web.Application(client_max_size=256 * 1024)
    app[CRM_KEY] = crm
    app.router.add_post("/leads", post_lead)
    app.router.add_route("HEAD", "/leads", probe)
    app.router.add_get("/_leads", get_leads)
    app.router.add_get("/_stats", get_stats)
    app.router.add_get("/_calls", get_calls)
    app.router.add_post("/_reset", reset)
    app.router.add_post("/_config", configure)
    return app


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("a rate is between 0 and 1")
    return value


_VENDOR_DEFAULT: Any = object()  # --rate-limit not given: keep the vendor's own default


def _rate_limit(text: str) -> Rate | None:
    try:
        return parse_rate("--rate-limit", text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker.fakecrm", description=__doc__.split("\n")[0])
    parser.add_argument("--vendor", choices=["webhook", *VENDORS], default="webhook",
                        help="which CRM to fake (default: the webhook)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--fail-rate", type=_rate, default=0.0,
                        help="share of calls answered 503 (a vendor fake: its own 5xx)")
    parser.add_argument("--timeout-rate", type=_rate, default=0.0,
                        help="share of calls stored, then answered too late")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    parser.add_argument("--reject-domain", default=DEFAULT_REJECT_DOMAIN,
                        help="e-mail domain answered 422 (a vendor fake: refused its own way)")
    parser.add_argument("--hang-seconds", type=float, default=DEFAULT_HANG_SECONDS,
                        help="how late a 'too late' answer comes")
    parser.add_argument("--seed", type=int, default=None, help="for repeatable failure patterns")
    parser.add_argument("--rate-limit", type=_rate_limit, default=_VENDOR_DEFAULT, metavar="COUNT/WINDOW",
                        help="a vendor's rolling window, such as 100/10s, or off (default: its lowest plan)")
    parser.add_argument("--token", default=None, help="the only credential a vendor fake accepts")
    args = parser.parse_args(argv)
    if args.vendor != "webhook":
        _serve_vendor(args)
        return
    if args.token is not None or args.rate_limit is not _VENDOR_DEFAULT:
        parser.error("--token and --rate-limit apply to a --vendor fake, not to the webhook")
    behaviour = Behaviour(args.fail_rate, args.timeout_rate, args.latency_ms, args.reject_domain,
                          args.hang_seconds)
    print(f"fake CRM on http://{args.host}:{args.port}/leads", file=sys.stderr, flush=True)
    # A short shutdown: hanging "too late" answers must not hold up Ctrl-C.
    web.run_app(create_app(behaviour, seed=args.seed), host=args.host, port=args.port,
                access_log=None, print=None, shutdown_timeout=1.0, handler_cancellation=True)


def _serve_vendor(args: argparse.Namespace) -> None:
    module = VENDORS[args.vendor]
    app = module.create_app(seed=args.seed)
    knobs: dict[str, Any] = {"fail_rate": args.fail_rate, "timeout_rate": args.timeout_rate,
                             "latency_ms": args.latency_ms, "reject_domain": args.reject_domain,
                             "hang_seconds": args.hang_seconds}
    if args.rate_limit is not _VENDOR_DEFAULT:
        knobs["rate_limit"] = args.rate_limit
    if args.token is not None:
        knobs["token"] = args.token
    try:
        app[module.STATE].configure(**knobs)
    except ValueError as exc:
        print(f"python -m worker.fakecrm: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"fake {args.vendor} on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, shutdown_timeout=1.0,
                handler_cancellation=True)


if __name__ == "__main__":
    main()
