"""The README and docs/ are checked against the code.

* The configuration reference (docs/configuration.md) is what
  ``python -m snnconv.config.reference`` writes, and its key tables agree with
  the schema and the default template: every section and key, what it
  accepts, its default and whether it sweeps. Regenerate the page with
  ``python -m snnconv.config.reference docs/configuration.md``.
* Every ``section.key`` or ``[section] key`` the pages mention exists, and
  every ```ini block is a config the loader accepts key by key.
* Relative links point to files that exist (and, into a page, to a heading).
* Every ```python block runs: the blocks of a page in order, in one namespace
  (a later block may use what an earlier one made), in an empty temporary
  folder. How they are kept small and fast:

  - Small data: ``snnconv.load_dataset`` returns the first ``SMALL_SAMPLES``
    test and normalisation samples, and ``load_keyword_events`` the first
    ``SMALL_CLIPS`` training and test clips. The examples are written for
    the full bundled files; nothing else about them changes.
  - ``REPLACEMENTS``: text replaced in a page's blocks before they run (e.g.
    ``epochs=30`` -> ``epochs=1``). Each must match, so a stale entry fails.
  - A block preceded by ``<!-- needs: MODULE[, MODULE] -->`` runs on its own
    (it must set up what it uses) and only where those optional packages
    import; it is skipped otherwise, saying which.
  - A block preceded by ``<!-- not tested: REASON -->`` is not run. Keep
    these rare: the reason is printed by ``test_untested_blocks_say_why``.
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import numpy as np
import pytest

from snnconv.config import reference
from snnconv.config.schema import SECTIONS, ValueProblem, key_spec, section_keys
from snnconv.sweep import SWEEPABLE

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md"] + sorted(DOCS.glob("*.md"))
CONFIG_PAGE = DOCS / "configuration.md"

SMALL_SAMPLES = 100      # test and normalisation samples load_dataset keeps
SMALL_CLIPS = 64         # training and test clips load_keyword_events keeps

# page (relative to the repository) -> [(text in its python blocks, what runs instead)]
REPLACEMENTS: dict[str, list[tuple[str, str]]] = {
    "README.md": [("epochs=30", "epochs=1")],
    "docs/trained_networks.md": [("epochs=30", "epochs=1")],
    "docs/stdp.md": [("n_exc=100", "n_exc=20")],
}


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# ---------------------------------------------------------------- fenced blocks

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(not tested|needs)\s*:\s*(.+?)\s*-->\s*$")


def blocks(path: Path, language: str):
    """``(line number, code, marker)`` of every fenced block in ``language``.

    ``marker`` is ``(kind, text)`` of a ``<!-- not tested: ... -->`` or
    ``<!-- needs: ... -->`` comment on the line before the fence, else None.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        lang, start = match.group(1), i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if lang == language:
            before = lines[start - 1] if start else ""
            m = MARKER.match(before.strip())
            found.append((start + 1, "\n".join(lines[start + 1:end]) + "\n",
                          (m.group(1), m.group(2)) if m else None))
        i = end + 1
    return found


def prose(path: Path) -> str:
    """A page's text outside fenced blocks."""
    out, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------- configuration reference

def test_configuration_reference_is_generated_from_the_code():
    assert CONFIG_PAGE.read_text(encoding="utf-8") == reference.render(), (
        "docs/configuration.md is out of date: run "
        "python -m snnconv.config.reference docs/configuration.md")


def documented_keys(text: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """``{section: [(key, accepts, default, sweep), ...]}`` from the page's key tables."""
    sections: dict[str, list] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^## `\[(\w+)\]`\s*$", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
            continue
        if line.startswith("## "):
            current = None
        row = re.match(r"^\| `(\w+)` \| (.*) \| (`[^`]*`|\*empty\*) \| (yes|no) \|$", line)
        if row and current is not None:
            current.append(row.groups())
    return sections


def test_configuration_reference_lists_every_key_as_the_schema_has_it():
    text = CONFIG_PAGE.read_text(encoding="utf-8")
    documented = documented_keys(text)
    assert list(documented) == list(SECTIONS), "sections on the page vs in the schema"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(reference.template_path(), encoding="utf-8")
    for section, rows in documented.items():
        assert [r[0] for r in rows] == list(section_keys(section)), f"[{section}] keys"
        for key, accepts, default, sweep in rows:
            spec = key_spec(section, key)
            name = f"{section}.{key}"
            assert accepts == spec.describe(), name
            for choice in spec.choices:
                assert choice in accepts, f"{name}: {choice} not listed"
            raw = parser.get(section, key)
            assert default == (f"`{raw}`" if raw else "*empty*"), name
            spec.parse(raw) if raw or spec.optional else None   # the default is valid
            assert sweep == ("yes" if spec.kind in SWEEPABLE else "no"), name
            assert f"\n### `{name}`\n" in text, f"{name} has no entry"


def test_every_template_comment_names_its_key_and_states_its_default():
    """The comment the reference shows for a key starts with the key and, where it
    says ``default: X``, X is the value the template sets."""
    _, template = reference.read_template()
    for section in SECTIONS:
        for key in section_keys(section):
            entry = template[section].keys[key]
            name = f"{section}.{key}"
            assert entry.comment and entry.comment[0].startswith(f"{key}:"), name
            text = " ".join(entry.comment)
            if "default:" not in text:
                continue
            claim = text.rsplit("default:", 1)[1].strip()
            raw = entry.default
            if not raw:
                assert claim.lower().startswith(("empty", "none")), f"{name}: {claim}"
                continue
            spec = key_spec(section, key)
            if spec.kind in ("int", "float") and raw.lower() not in spec.words:
                number = re.match(r"[-+0-9.e]+", claim).group(0).rstrip(".")
                assert float(number) == float(raw), f"{name}: comment {claim!r}, value {raw!r}"
            else:
                assert claim.lower().startswith(raw.lower()), f"{name}: comment {claim!r}, value {raw!r}"


# ---------------------------------------------------------------- keys and configs the pages name

SECTION_NAMES = "|".join(SECTIONS)
FILE_SUFFIXES = ("png", "py", "ini", "md", "keras", "npz", "csv", "json", "h5", "nir", "txt")
DOTTED = re.compile(rf"(?<![\w./-])({SECTION_NAMES})\.([a-z_][a-z0-9_]*)(?![\w(])")
BRACKETED = re.compile(rf"`\[({SECTION_NAMES})\] ([a-z_][a-z0-9_]*)")    # `[cell] v_init`


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_pages_name_only_keys_that_exist(page):
    text = page.read_text(encoding="utf-8")
    unknown = []
    for pattern in (DOTTED, BRACKETED):
        for section, key in pattern.findall(text):
            if pattern is DOTTED and key in FILE_SUFFIXES:
                continue                                  # training.png, stdp.npz
            if key not in section_keys(section):
                unknown.append(f"{section}.{key}")
    assert not unknown, f"{rel(page)} names keys the schema does not have: {sorted(set(unknown))}"


def check_value(section: str, key: str, value: str) -> None:
    spec = key_spec(section, key)
    values = value.split(",") if spec.kind in SWEEPABLE else [value]
    for item in values:
        try:
            spec.parse(item)
        except ValueProblem as exc:
            raise AssertionError(f"{section}.{key} = {value}: {exc}") from None


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_ini_examples_are_valid_configs(page):
    for line, text, _ in blocks(page, "ini"):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text, source=f"{rel(page)}:{line}")
        for section in parser.sections():
            assert section in SECTIONS, f"{rel(page)}:{line}: unknown section [{section}]"
            for key, value in parser.items(section):
                assert key in section_keys(section), f"{rel(page)}:{line}: {section}.{key}"
                check_value(section, key, value)


# ---------------------------------------------------------------- links and the front page

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", prose(page), re.M)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z]+:", target):
            continue                                      # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{rel(page)}: broken links {broken}"


def test_readme_is_short_and_links_every_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    linked = {(REPO / t.partition("#")[0]).resolve() for t in LINK.findall(readme)}
    missing = [rel(p) for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md does not link {missing}"
    assert "make demo" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


# ---------------------------------------------------------------- python examples

def python_pages():
    """The pages with python blocks that run in order (not only ``needs``/``not tested`` ones)."""
    return [p for p in PAGES if any(marker is None for _, _, marker in blocks(p, "python"))]


def test_untested_blocks_say_why():
    for page in PAGES:
        for line, _, marker in blocks(page, "python"):
            if marker and marker[0] == "not tested":
                assert len(marker[1]) > 10, f"{rel(page)}:{line}: say why it is not tested"
                print(f"{rel(page)}:{line} not tested: {marker[1]}")


@pytest.fixture
def small_data(monkeypatch):
    """The bundled data cut to a few samples wherever the examples load it."""
    import snnconv
    import snnconv.audio.data as keyword_data
    from snnconv import datasets

    real_load = datasets.load_dataset

    def load_dataset(*args, **kwargs):
        data = real_load(*args, **kwargs)
        for name in ("x_test", "y_test", "x_norm"):
            if getattr(data, name, None) is not None:
                setattr(data, name, np.asarray(getattr(data, name)[:SMALL_SAMPLES]))
        return data

    real_events = keyword_data.load_keyword_events

    def load_keyword_events(*args, **kwargs):
        data = real_events(*args, **kwargs)
        for name in ("x_train", "y_train", "x_test", "y_test"):
            setattr(data, name, getattr(data, name)[:SMALL_CLIPS])
        return data

    monkeypatch.setattr(snnconv, "load_dataset", load_dataset, raising=False)
    monkeypatch.setattr(keyword_data, "load_keyword_events", load_keyword_events)


def runnable(page: Path):
    """The page's python blocks with ``REPLACEMENTS`` applied; ``(line, code, marker)``."""
    out = [list(b) for b in blocks(page, "python")]
    for old, new in REPLACEMENTS.get(rel(page), []):
        hits = [b for b in out if old in b[1]]
        assert hits, f"REPLACEMENTS: {old!r} is in no python block of {rel(page)}"
        for b in hits:
            b[1] = b[1].replace(old, new)
    return out


def _run(code: str, where: str, namespace: dict) -> None:
    exec(compile(code, where, "exec"), namespace)   # noqa: S102 (the docs' own code)


@pytest.mark.parametrize("page", python_pages(), ids=rel)
def test_python_examples_run(page, tmp_path, monkeypatch, small_data):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code, marker in runnable(page):
        if marker is None:
            _run(code, f"{rel(page)}:{line}", namespace)


NEEDS = [pytest.param(page, line, id=f"{rel(page)}:{line}")
         for page in PAGES for line, _, marker in blocks(page, "python")
         if marker and marker[0] == "needs"]


@pytest.mark.parametrize("page,line", NEEDS)
def test_python_examples_with_optional_packages_run(page, line, tmp_path, monkeypatch,
                                                    small_data):
    """A ``needs`` block runs on its own (it sets up what it uses), where its packages are."""
    code, marker = next((c, m) for n, c, m in runnable(page) if n == line)
    for module in marker[1].split(","):
        pytest.importorskip(module.strip())
    monkeypatch.chdir(tmp_path)
    _run(code, f"{rel(page)}:{line}", {"__name__": "__docs__"})
