"""The API reference (mkdocs + mkdocstrings) names every public name.

``.ci/run`` builds the site with ``--strict``, so a broken reference fails
there; this test fails as soon as a public name has no ``:::`` entry.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"

# module -> whether its page documents it whole (``::: module`` with its members)
PUBLIC = [
    "roomsignal",
    "roomsignal.events",
    "roomsignal.errors",
    "roomsignal.catalog",
    "roomsignal.tokens",
    "roomsignal.server",
    "roomsignal.client",
    "roomsignal.testing",
    "roomsignal.testing.plugin",
    "roomsignal.media",
]


def _directives() -> list[tuple[str, str]]:
    """Every ``::: target`` with the options block that follows it."""
    found = []
    for page in REFERENCE.glob("*.md"):
        text = page.read_text()
        for match in re.finditer(r"^::: (\S+)\n((?:    .*\n)*)", text, re.M):
            found.append((match.group(1), match.group(2)))
    return found


def _documented() -> set[str]:
    names: set[str] = set()
    for target, options in _directives():
        names.add(target)
        module = importlib.import_module(target) if _is_module(target) else None
        if module is not None and "members: false" not in options and "members: [" not in options:
            names.update(f"{target}.{name}" for name in getattr(module, "__all__", ()))
        for listed in re.findall(r"members: \[(.*)\]", options):
            names.update(f"{target}.{name.strip()}" for name in listed.split(","))
    return names


def _is_module(target: str) -> bool:
    try:
        importlib.import_module(target)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("module_name", PUBLIC)
def test_every_public_name_has_a_reference_entry(module_name: str) -> None:
    documented = _documented()
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        home = f"{getattr(obj, '__module__', module_name)}.{name}"
        aliases = {f"{module_name}.{name}", f"roomsignal.{name}", home}
        # the same object re-exported elsewhere counts once documented anywhere
        aliases.update(f"{other}.{name}" for other in PUBLIC)
        if not aliases & documented:
            missing.append(name)
    assert missing == [], f"add these to docs/reference/: {missing}"


def test_every_reference_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in nav
