"""Content-hashed asset names (C4): a changed script changes its name and its
importers' names, and every built page points at files that exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pelican.plugins.leadform import assets

from tests.site.conftest import Build, build_repo_site
from tests.site.test_leadform_plugin import Tags

NAME = re.compile(r"^(js|css)/[a-z]+\.[0-9a-f]{8}\.(js|css)$")


@pytest.fixture
def static(tmp_path: Path) -> Path:
    copy = tmp_path / "static"
    shutil.copytree(assets.STATIC, copy)
    return copy


def test_every_script_and_style_gets_a_hashed_name() -> None:
    names = assets.plan().names
    assert set(names) == {p.relative_to(assets.STATIC).as_posix() for p in assets.STATIC.rglob("*.*")}
    for source, published in names.items():
        assert NAME.match(published), published
        assert published.split(".")[0] == source.rsplit(".", 1)[0]


def changed_by(static: Path, module: str) -> set[str]:
    before = assets.plan(static).names
    path = static / module
    path.write_text(path.read_text() + "export const CHANGED = 1;\n")
    after = assets.plan(static).names
    return {source for source in before if before[source] != after[source]}


def test_a_changed_module_changes_its_name_and_its_importers_name(static: Path) -> None:
    assert changed_by(static, "js/words.js") == {"js/words.js", "js/leadform.js"}
    assert changed_by(static, "js/leadform.js") == {"js/leadform.js"}


def test_a_change_travels_up_a_chain_of_imports(tmp_path: Path) -> None:
    (tmp_path / "js" / "lib").mkdir(parents=True)
    (tmp_path / "js" / "a.js").write_text("import { b } from './b.js';\nimport('./lib/d.js');\n")
    (tmp_path / "js" / "b.js").write_text("export { c as b } from \"./lib/c.js\";\n")
    (tmp_path / "js" / "lib" / "c.js").write_text("import '../e.js';\nexport const c = 1;\n")
    (tmp_path / "js" / "lib" / "d.js").write_text("export const d = 1;\n")
    (tmp_path / "js" / "e.js").write_text("export const e = 1;\n")
    assert changed_by(tmp_path, "js/e.js") == {"js/e.js", "js/lib/c.js", "js/b.js", "js/a.js"}
    assert changed_by(tmp_path, "js/lib/d.js") == {"js/lib/d.js", "js/a.js"}
    done = assets.plan(tmp_path)
    a = done.files[done.names["js/a.js"]].decode()
    assert f"'./{done.names['js/b.js'][3:]}'" in a
    assert f"import('./{done.names['js/lib/d.js'][3:]}')" in a
    c = done.files[done.names["js/lib/c.js"]].decode()
    assert f"import '../{done.names['js/e.js'][3:]}'" in c


def test_a_comment_only_change_keeps_every_name(static: Path) -> None:
    before = assets.plan(static).names
    rules = static / "js" / "rules.js"
    rules.write_text("// a note for the next engineer\n" + rules.read_text())
    assert assets.plan(static).names == before  # names hash the published bytes


def test_imports_are_rewritten_to_the_hashed_names_and_resolve() -> None:
    done = assets.plan()
    published = set(done.files)
    for name in done.names.values():
        if not name.endswith(".js"):
            continue
        text = done.files[name].decode()
        assert "'./store.js'" not in text, name
        assert "'./outbox.js'" not in text, name
        for dep in assets.imports_of(name, text):
            assert dep in published, f"{name} imports {dep}, which is not published"


def test_an_import_cycle_or_a_missing_module_is_an_error(static: Path) -> None:
    (static / "js" / "machine.js").write_text("import { check } from './rules.js';\n")
    (static / "js" / "rules.js").write_text("import { can } from './machine.js';\n")
    with pytest.raises(assets.AssetError, match="import cycle"):
        assets.plan(static)
    (static / "js" / "rules.js").write_text("import { x } from './nowhere.js';\n")
    with pytest.raises(assets.AssetError, match=r"nowhere\.js"):
        assets.plan(static)


def test_publish_leaves_no_unhashed_copy_an_older_build_wrote(tmp_path: Path) -> None:
    target = tmp_path / "leadform"
    (target / "js").mkdir(parents=True)
    (target / "js" / "leadform.js").write_text("// from an older build")
    done = assets.publish(target)
    assert not (target / "js" / "leadform.js").exists()
    for name, data in done.files.items():
        assert (target / name).read_bytes() == data
    assert done.before > done.after > 0


def linked(html: str) -> list[str]:
    page = Tags(html)
    return [str(a["src"]) for a in page.find("script") if a.get("src")] + \
        [str(a["href"]) for a in page.find("link", rel="stylesheet")]


def test_built_pages_link_only_hashed_files_that_exist(site: Build) -> None:
    assert site.returncode == 0, site.log
    pages = sorted(site.out.rglob("*.html"))
    seen = set()
    for page in pages:
        for url in linked(page.read_text(encoding="utf-8")):
            path = urlsplit(url).path
            assert re.search(assets.HASHED, path), f"{page.name} links {url}, not a hashed name"
            assert (site.out / path.lstrip("/")).is_file(), f"{page.name} links {url}, which is not there"
            seen.add(path)
    names = assets.plan().names
    assert f"/leadform/{names['js/leadform.js']}" in seen
    assert any(p.startswith("/theme/css/site.") for p in seen)  # the theme's own styles too
    assert not (site.out / "theme" / "css" / "site.css").exists()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build_repo_site(tmp_path_factory.mktemp("site"))
