"""The map stays true: docs/ARCHITECTURE.md names only files that exist, and the README's layout
lists every package of playground/ and links to the map.

The original design notes drifted from the code within a month because nothing checked them; a
path named in the map that no longer exists fails here, so a move updates the map in the same
commit.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "ARCHITECTURE.md"
# A file or folder named in backquotes: `playground/runs/pipeline.py`, `classroom/views/`,
# `sandbox/inside/tracer.py`, `templates/runs/run_detail.html`.
NAMED = re.compile(r"`([\w./-]+/[\w.-]*)`")
SUFFIXES = (".py", ".html", ".js", ".md", ".toml", "/")


def _named_paths(text: str) -> set[str]:
    return {
        name
        for name in NAMED.findall(text)
        if name.endswith(SUFFIXES) and "<" not in name and not name.startswith(("/", "http"))
    }


def _exists(name: str) -> bool:
    """Named from the repository's root, from playground/, or as the tail of a path (a table cell
    names `inside/runner.py` right after `playground/sandbox/...`)."""
    plain = name.rstrip("/")
    if (ROOT / plain).exists() or (ROOT / "playground" / plain).exists():
        return True
    return any(
        str(path.relative_to(ROOT)).endswith("/" + plain)
        for top in ("playground", "templates", "static", "tests")
        for path in (ROOT / top).rglob(Path(plain).name)
    )


def test_every_path_the_map_names_exists() -> None:
    named = _named_paths(MAP.read_text(encoding="utf-8"))
    assert len(named) > 60, sorted(named)  # the "where is X" table alone names more
    gone = sorted(name for name in named if not _exists(name))
    assert not gone, f"docs/ARCHITECTURE.md names what no longer exists: {gone}"


def test_the_check_would_see_a_moved_file() -> None:
    assert _exists("playground/runs/pipeline.py")
    assert _exists("inside/runner.py")
    assert not _exists("playground/runs/items.py")  # renamed emulation_items.py
    assert not _exists("streaming/events.py")  # moved to runs/events.py


def test_the_readme_layout_lists_every_package_and_links_the_map() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Project layout") :]
    layout = layout[: layout.index("\n## ", 1)]
    assert "(docs/ARCHITECTURE.md)" in layout
    packages = sorted(p.parent.name for p in (ROOT / "playground").glob("*/__init__.py"))
    modules = sorted(p.name for p in (ROOT / "playground").glob("*.py") if p.name != "__init__.py")
    missing = [f"{p}/" for p in packages if f"  {p}/ " not in layout]
    missing += [m for m in modules if m not in layout]
    assert not missing, f"README's project layout leaves out {missing}"


def test_the_map_names_every_package_in_its_layers() -> None:
    text = MAP.read_text(encoding="utf-8")
    picture = text[text.index("## The layers") :]
    picture = picture[: picture.index("```", picture.index("```") + 3)]
    packages = sorted(p.parent.name for p in (ROOT / "playground").glob("*/__init__.py"))
    missing = [p for p in packages if not re.search(rf"\b{p}\b", picture)]
    assert not missing, f"the layers' picture leaves out {missing}"
