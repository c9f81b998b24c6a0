"""The page's cross-origin POST with its stamp: the CORS preflight must allow X-Leadline-Stamp.

Chromium makes the real preflight (a custom header is not CORS-safelisted) from a page on
the allowlisted origin to the proxy on another; a refused header would be a failed fetch."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiormq
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from leadline.message import H_STAMP
from leadline.topology import Topology
from proxy import stamp
from tests.proxy.conftest import ORIGIN, VALID_LEAD, Client, drain

pytestmark = pytest.mark.broker
MakeClient = Callable[..., Awaitable[Client]]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


async def test_a_preflight_asking_for_the_stamp_header_is_allowed(client: Client) -> None:
    async with client.options("/api/forms/lead", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key,x-leadline-stamp"}) as answer:
        assert answer.status == 204
        allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "idempotency-key", "x-leadline-stamp"} <= allowed


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium at /usr/bin/chromium")
async def test_chromium_sends_the_stamp_cross_origin_after_a_real_preflight(
        make_client: MakeClient, amqp: aiormq.abc.AbstractChannel, topology: Topology) -> None:
    from playwright.async_api import async_playwright

    # The page on a loopback origin of its own (a page Playwright made up would be "public"
    # to Chromium's local network access rules, and refused before CORS is asked).
    async def contact(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><p>form</p>", content_type="text/html")

    site = web.Application()
    site.router.add_get("/contact/", contact)
    served = TestServer(site, host="127.0.0.1")
    await served.start_server()
    origin = f"http://127.0.0.1:{served.port}"
    client = await make_client(SPAM_STAMP="require", SPAM_STAMP_BITS="8", ALLOWED_ORIGINS=origin)
    endpoint = f"http://127.0.0.1:{client.port}/api/forms/lead"
    sid = str(uuid.uuid4())
    header = stamp.mint("lead", sid, 8)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            said: list[str] = []
            page.on("console", lambda message: said.append(message.text))
            await page.goto(f"{origin}/contact/")
            result = await page.evaluate("""async ([url, sid, stamp, body]) => {
                try {
                    const answer = await fetch(url, {method: 'POST', body: JSON.stringify(body), headers: {
                        'Content-Type': 'application/json', 'Idempotency-Key': sid,
                        'X-Leadline-Stamp': stamp}});
                    return {status: answer.status, body: await answer.json()};
                } catch (error) { return {error: String(error)}; }
            }""", [endpoint, sid, header, VALID_LEAD])
        finally:
            await browser.close()
            await served.close()
    assert result == {"status": 202, "body": {"status": "queued", "id": sid}}, said
    [published] = await drain(amqp, topology.work_queue)
    assert (published.properties.headers or {})[H_STAMP] == "valid"
