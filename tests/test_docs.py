"""The docs say what the code does: the settings reference, the recipes' settings, the rejection codes."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import jwtguard
from jwtguard import exceptions
from jwtguard.checks import check_settings
from jwtguard.conf import GLOBAL_DEFAULTS, ISSUER_DEFAULTS, parse_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPE_PAGES = ["quickstart.md", "settings.md", "providers.md", "migrating.md"]


def sections(page: str, level: str) -> dict[str, str]:
    """``{name: body}`` for every heading ``<level> `name``` of a page."""
    text = (DOCS / page).read_text()
    parts = re.split(rf"^{level} `([^`]+)`\s*$", text, flags=re.MULTILINE)
    names, bodies = parts[1::2], parts[2::2]
    assert len(names) == len(set(names)), f"{page}: a heading is repeated"
    return {name: re.split(r"^#{1,3} ", body, flags=re.MULTILINE)[0] for name, body in zip(names, bodies, strict=True)}


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.DOTALL)


class TestSettingsReference:
    reference = sections("settings.md", "###")

    def test_every_setting_has_one_heading_and_no_other(self) -> None:
        assert sorted(self.reference) == sorted({**ISSUER_DEFAULTS, **GLOBAL_DEFAULTS})

    @pytest.mark.parametrize("key", sorted({**ISSUER_DEFAULTS, **GLOBAL_DEFAULTS}))
    def test_type_default_and_scope_are_given_and_the_default_is_the_codes(self, key: str) -> None:
        body = self.reference.get(key, "")
        assert re.search(r"^- \*\*Type:\*\* \S", body, flags=re.MULTILINE), f"{key}: no type"
        default = re.search(r"^- \*\*Default:\*\* `([^`]*)`", body, flags=re.MULTILINE)
        assert default, f"{key}: no default"
        expected = ISSUER_DEFAULTS.get(key, GLOBAL_DEFAULTS.get(key))
        assert ast.literal_eval(default.group(1)) == expected, f"{key}: the docs say {default.group(1)}"
        scope = "per issuer" if key in ISSUER_DEFAULTS else "global"
        assert f"- **Scope:** {scope}" in body, f"{key}: scope is {scope}"


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(block, id=f"{page}-{index}")
        for page in RECIPE_PAGES
        for index, block in enumerate(python_blocks(page))
        if "JWTGUARD = {" in block
    ],
)
def test_documented_settings_are_valid_and_pass_the_checks(block: str, settings: Any) -> None:
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    parsed = parse_settings(namespace["JWTGUARD"])
    assert parsed.issuers
    settings.JWTGUARD = namespace["JWTGUARD"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}
    assert check_settings() == []


def rejection_codes() -> set[str]:
    """The codes of every ``TokenError`` subclass in the package (each module imported, so none is missed)."""
    for module in pkgutil.walk_packages(jwtguard.__path__, "jwtguard."):
        importlib.import_module(module.name)
    codes = set()
    pending: list[type[exceptions.JWTGuardError]] = [exceptions.TokenError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def test_troubleshooting_has_a_section_per_rejection_code() -> None:
    documented = set(sections("troubleshooting.md", "##"))
    expected = rejection_codes() | {"insufficient_scope", exceptions.KeySetUnavailable.code}
    assert "token_expired" in expected
    assert expected - documented == set(), "undocumented codes"
    assert documented - expected == set(), "documented codes that do not exist"


def test_every_page_is_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text()
    listed = set(re.findall(r"^([a-z][a-z0-9-]*)$", index, flags=re.MULTILINE))
    pages = {page.stem for page in DOCS.glob("*.md")} - {"index"}
    assert pages <= listed
