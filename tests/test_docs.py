"""The manual stays true to the tree: every module is on the layout page, and no page names a file
that does not exist."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
TOP = ("inpaintlib/", "benchmarks/", "scripts/", "tests/", "notebooks/", "docs/", ".ci/")


def test_every_module_is_on_the_layout_page():
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = [p.relative_to(ROOT).as_posix() for p in (ROOT / "inpaintlib").rglob("*.py")]
    missing = [m for m in modules if f"`{m}`" not in layout]
    assert not missing, f"docs/layout.md does not name {missing}"


def test_the_readme_links_every_page_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, f"the README does not link docs/{page.name}"
    assert len(readme.splitlines()) <= 210


def named_files(text: str) -> set:
    """Repository paths a page names: in backticks or as a link, under one of the tracked folders."""
    names = set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"\]\(([^)\s#]+)\)", text))
    return {n.split(":")[0].rstrip(".,") for n in names if n.startswith(TOP) and "*" not in n and "<" not in n}


def test_no_page_names_a_file_that_does_not_exist():
    bad = {}
    for page in PAGES:
        text = page.read_text()
        for name in named_files(text):
            if not (ROOT / name).exists() and not (ROOT / f"{name}.py").exists():  # a notebook by its name
                bad.setdefault(page.name, []).append(name)
        for link in re.findall(r"\]\(([^)\s#:]+)\)", text):  # relative links resolve from the page itself
            if not link.startswith("http") and not (page.parent / link).exists():
                bad.setdefault(page.name, []).append(link)
    assert not bad, f"pages name files that do not exist: {bad}"


def test_each_notebook_names_the_files_it_teaches_and_they_exist():
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        names = {n for n in named_files(nb.read_text()) if n.startswith("inpaintlib/")}
        assert names, f"{nb.name} names no file or folder of the package"
        missing = [n for n in names if not (ROOT / n).exists()]
        assert not missing, f"{nb.name} names files that do not exist: {missing}"
