"""The no-JavaScript pages in the posting page's language (contract C3), through the real proxy."""

from __future__ import annotations

import re
import string
from collections.abc import Awaitable, Callable

import aiormq
import pytest

from leadline.schemas import CODES, load_schemas
from leadline.topology import Topology
from proxy import texts
from proxy.views import thanks_location
from tests.proxy.conftest import ORIGIN, Client, drain
from tests.support.ports import free_port

pytestmark = pytest.mark.broker

MakeClient = Callable[..., Awaitable[Client]]
FORM = "application/x-www-form-urlencoded"
GOOD = "name=Ada&email=ada%40example.com&consent=on"
BROWSER = {"Content-Type": FORM, "Accept": "text/html,application/xhtml+xml", "Origin": ORIGIN,
           "Referer": f"{ORIGIN}/contact/"}


async def page_of(client: Client, body: str | bytes, *, lang: str | None, form: str = "lead",
                  headers: dict[str, str] | None = None) -> tuple[int, str]:
    query = "" if lang is None else f"?lang={lang}"
    sent = {k: v for k, v in {**BROWSER, **(headers or {})}.items() if v}  # "": leave it out
    async with client.post(f"/api/forms/{form}{query}", data=body, allow_redirects=False,
                           headers=sent) as answer:
        assert answer.content_type == "text/html", answer.status
        return answer.status, await answer.text()


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([^"]*)">', page)
    assert found, page[:200]
    return found.group(1)


def title(page: str) -> str:
    found = re.search(r"<title>(.*?)</title>", page)
    assert found
    return found.group(1)


@pytest.mark.parametrize("lang", texts.LANGS)
async def test_a_422_page_lists_each_field_in_the_pages_language_with_its_limit(
        client: Client, lang: str) -> None:
    status, page = await page_of(client, "name=" + "A" * 121 + "&email=x", lang=lang)
    assert status == 422
    assert html_lang(page) == texts.HTML_LANG[lang]
    assert title(page) == texts.PAGES[lang]["title.422"]
    assert f'href="{ORIGIN}/contact/"' in page
    assert texts.PAGES[lang]["back"] in page
    if lang == "en":  # the schema's own English words
        assert "<strong>Your name</strong> must be at most 120 characters (it has 121)" in page
        assert "must be an e-mail address such as ada@example.com" in page
    else:
        assert texts.ERRORS[lang]["maxLength"].format(limit=120) in page
        assert texts.ERRORS[lang]["required:box"] in page  # the consent box
        # The editor's own words in this language (x-i18n), as the page shows them.
        email = load_schemas()["lead"].properties["email"]
        assert email["x-i18n"][lang]["x-pattern-message"] in page


@pytest.mark.parametrize("lang", ["de", "zh"])
async def test_the_editors_words_for_a_rule_win_over_the_built_in_phrase(client: Client, lang: str) -> None:
    status, page = await page_of(client, GOOD.replace("consent=on", "consent=false"), lang=lang)
    assert status == 422
    consent = load_schemas()["lead"].properties["consent"]
    assert consent["x-i18n"][lang]["x-const-message"] in page
    assert texts.ERRORS[lang]["const:box"] not in page


@pytest.mark.parametrize("lang", texts.LANGS)
async def test_every_refusal_that_reaches_the_page_is_worded_in_its_language(
        make_client: MakeClient, lang: str) -> None:
    client = await make_client(MAX_BODY_BYTES="256")
    cases = {
        400: (b"name=%ff%fe", {}),  # not UTF-8
        403: (GOOD, {"Origin": "https://evil.example"}),
        404: (GOOD, {}),  # posted to a form that does not exist, below
        413: ("message=" + "x" * 300, {}),
    }
    for status, (body, headers) in cases.items():
        form = "nosuchform" if status == 404 else "lead"
        got, page = await page_of(client, body, lang=lang, form=form, headers=headers)
        assert got == status, (status, page)
        assert html_lang(page) == texts.HTML_LANG[lang]
        assert title(page) == texts.PAGES[lang][f"title.{status}"]
        assert texts.PAGES[lang][f"message.{status}"] in page
    limited = await make_client(RATE_LIMIT="1/min")
    async with limited.post("/api/forms/lead", data=GOOD, allow_redirects=False, headers=BROWSER) as first:
        assert first.status == 303  # the one the rate allows
    got, page = await page_of(limited, GOOD, lang=lang)
    assert got == 429
    assert title(page) == texts.PAGES[lang]["title.429"]


@pytest.mark.parametrize("lang", texts.LANGS)
async def test_the_503_page_when_the_broker_is_away(make_client: MakeClient, lang: str) -> None:
    client = await make_client(wait_ready=False, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    status, page = await page_of(client, GOOD, lang=lang)
    assert status == 503
    assert title(page) == texts.PAGES[lang]["title.503"]


@pytest.mark.parametrize("lang", texts.LANGS)
async def test_the_202_page_says_thank_you_in_the_pages_language(
        client: Client, amqp: aiormq.abc.AbstractChannel, topology: Topology, lang: str) -> None:
    # no Origin or Referer: nowhere allowlisted to redirect to, so the proxy thanks itself
    status, page = await page_of(client, GOOD, lang=lang, headers={"Origin": "", "Referer": ""})
    assert status == 202
    assert html_lang(page) == texts.HTML_LANG[lang]
    assert texts.PAGES[lang]["message.202"] in page
    assert len(await drain(amqp, topology.work_queue)) == 1


@pytest.mark.parametrize(("query", "expected"), [
    ("?lang=de", "/thanks/lead/de/"), ("?lang=zh", "/thanks/lead/zh/"), ("?lang=en", "/thanks/lead/en/"),
    ("?lang=DE", "/thanks/lead/de/"), ("?lang=fr", "/thanks/lead/en/"), ("?lang=de-AT", "/thanks/lead/en/"),
    ("?lang=%3Cscript%3E", "/thanks/lead/en/"), ("", "/thanks/lead/"),
])
async def test_the_303_goes_to_the_thank_you_page_in_the_posting_pages_language(
        client: Client, query: str, expected: str) -> None:
    async with client.post(f"/api/forms/lead{query}", data=GOOD, allow_redirects=False,
                           headers={"Content-Type": FORM, "Origin": ORIGIN}) as answer:
        assert answer.status == 303
        assert answer.headers["Location"] == ORIGIN + expected


async def test_a_thanks_path_with_lang_gets_it_filled_in(make_client: MakeClient) -> None:
    client = await make_client(THANKS_PATH="/{lang}/merci/{form}.html")
    async with client.post("/api/forms/lead?lang=zh", data=GOOD, allow_redirects=False,
                           headers={"Content-Type": FORM, "Origin": ORIGIN}) as answer:
        assert answer.headers["Location"] == f"{ORIGIN}/zh/merci/lead.html"


def test_thanks_location_per_contract_c3() -> None:
    assert thanks_location("/thanks/{form}/", "lead", "de") == "/thanks/lead/de/"
    assert thanks_location("/thanks/{form}/", "lead", None) == "/thanks/lead/"
    assert thanks_location("/thanks/{form}/{lang}/", "lead", "zh") == "/thanks/lead/zh/"
    assert thanks_location("/thanks/{form}/{lang}/", "lead", None) == "/thanks/lead/"
    assert thanks_location("/merci/{form}.html", "lead", "de") == "/merci/lead.html"
    assert thanks_location("/merci/{form}.{lang}.html", "lead", "de") == "/merci/lead.de.html"


@pytest.mark.parametrize("value", ["fr", "<script>alert(1)</script>", "\" onload=\"x", "zh-CN", ""])
async def test_a_language_we_do_not_speak_is_english_and_never_reflected(client: Client, value: str) -> None:
    status, page = await page_of(client, "email=x", lang=value)
    assert status == 422
    assert html_lang(page) == "en"
    assert "<script" not in page
    assert "onload" not in page


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_every_text_with_the_same_placeholders() -> None:
    for table in (texts.PAGES, texts.ERRORS):
        keys = set(table["en"])
        for lang in texts.LANGS:
            assert set(table[lang]) == keys, lang
            for key in keys:
                assert _placeholders(table[lang][key]) == _placeholders(table["en"][key]), (lang, key)
    assert set(CODES) <= set(texts.ERRORS["en"])
    statuses = {"400", "403", "404", "408", "413", "415", "422", "429", "503", "stamp", "202"}
    assert {f"title.{s}" for s in statuses} | {f"message.{s}" for s in statuses} <= set(texts.PAGES["en"])
