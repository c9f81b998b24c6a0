"""The service worker the build writes (leadform-sw.js at the output's root)
and the form's attributes that lead the page to it and to the stamp's bits."""

from __future__ import annotations

import re
from pathlib import Path

from pelican.plugins.leadform import serviceworker, settings

from tests.site.conftest import Builder

FORM_TAG = re.compile(r"<form\b[^>]*>")


def test_the_worker_sits_at_the_root_and_imports_the_published_modules(build: Builder) -> None:
    site = build()
    assert site.returncode == 0, site.log
    text = (site.out / "leadform-sw.js").read_text()
    found = re.findall(r"from '(\./[^']+)'", text)
    # The published names: content-hashed once assets are (C4).
    assert [re.sub(r"\.[0-9a-f]{8}\.js$", ".js", f) for f in found] == ["./leadform/js/outbox.js",
                                                                         "./leadform/js/store.js"]
    for path in found:  # relative to the worker, so under any SITEURL path too
        assert (site.out / path).is_file()
    assert '"bits": 16' in text
    form = FORM_TAG.search(site.html())
    assert form is not None
    assert 'data-stamp-bits="16"' in form[0]
    assert 'data-sw="/leadform-sw.js"' in form[0]


def test_a_site_under_a_path_gets_the_worker_at_its_siteurl_root(build: Builder) -> None:
    site = build('SITEURL = "https://www.example.com/campaign"\n'
                 'LEADFORM = {**LEADFORM, "stamp_bits": 18, "static_dir": "assets/lf"}\n')
    assert site.returncode == 0, site.log
    form = FORM_TAG.search(site.html())
    assert form is not None
    assert 'data-sw="/campaign/leadform-sw.js"' in form[0]  # same origin as every page, as it must be
    assert 'data-stamp-bits="18"' in form[0]
    text = (site.out / "leadform-sw.js").read_text()
    assert re.search(r"from '\./assets/lf/js/outbox(\.[0-9a-f]{8})?\.js'", text)
    assert '"bits": 18' in text


def test_a_bad_stamp_bits_is_an_error_naming_the_setting(build: Builder) -> None:
    site = build('LEADFORM = {**LEADFORM, "stamp_bits": "lots"}\n')
    assert "LEADFORM['stamp_bits']" in site.log
    assert 'data-stamp-bits="16"' in site.html()
    assert build('LEADFORM = {**LEADFORM, "stamp_bits": 40}\n', fatal=True).returncode != 0


def test_imports_follow_the_names_mapping_and_any_module_change_changes_the_worker(tmp_path: Path) -> None:
    conf = settings.read({"LEADFORM": {}, "SITEURL": ""})
    js = tmp_path / conf.static_dir / "js"
    js.mkdir(parents=True)
    (js / "outbox.js").write_text("export const A = 1;\n")
    source = serviceworker.SOURCE.read_text()
    assert serviceworker.imports(source) == ["js/outbox.js", "js/store.js"]
    hashed = {"js/outbox.js": "js/outbox.0123abcd.js", "js/store.js": "js/store.89ef4567.js"}
    first = serviceworker.render(source, conf, hashed, tmp_path / conf.static_dir)
    assert "from './leadform/js/outbox.0123abcd.js'" in first
    assert "from './leadform/js/store.89ef4567.js'" in first
    (js / "outbox.js").write_text("export const A = 2;\n")
    assert serviceworker.render(source, conf, hashed, tmp_path / conf.static_dir) != first
