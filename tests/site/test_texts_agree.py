"""The page (the plugin's texts) and the proxy's no-JavaScript pages word the
same 422 codes in the same languages, so no visitor meets an English phrase
because one side learnt a code the other did not."""

from __future__ import annotations

import re

import pytest
from pelican.plugins.leadform import texts as page

from leadline.schemas import CODES
from proxy import texts as proxy

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def test_both_sides_have_the_same_languages_and_fallback() -> None:
    assert tuple(page.LANGS) == tuple(proxy.LANGS)
    assert page.FALLBACK == proxy.FALLBACK
    for tag in ("de-AT", "zh-Hans", "zh-CN", "fr", "", "EN"):
        assert page.reduce(tag) == proxy.lang_of(tag.split("-")[0])


@pytest.mark.parametrize("lang", proxy.LANGS)
def test_every_code_is_worded_on_both_sides(lang: str) -> None:
    on_page = {**page.texts(lang)["errors"], **page.texts(lang)["other"]}
    on_proxy = proxy.ERRORS[lang]
    assert set(CODES) <= set(on_page), set(CODES) - set(on_page)
    assert set(CODES) <= set(on_proxy), set(CODES) - set(on_proxy)


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_phrases_without_page_only_placeholders_are_the_same_words(lang: str) -> None:
    """Where the page's phrase needs nothing the proxy lacks ({this}, {count},
    {type}, {value}), a German or Chinese visitor reads the same sentence on both."""
    page_errors, proxy_errors = page.texts(lang)["errors"], proxy.ERRORS[lang]
    compared = 0
    for code, words in page_errors.items():
        if code in proxy_errors and set(PLACEHOLDER.findall(words)) <= {"limit", "values"}:
            assert words == proxy_errors[code], code
            compared += 1
    assert compared >= 5
