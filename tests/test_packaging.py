"""What ``pip install jwtguard`` gives a user: run against the source tree, and against the installed wheel by
scripts/test-wheel.sh (JWTGUARD_TEST_INSTALLED=1), where a file missing from the wheel fails here."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import os
import pkgutil
import re
from pathlib import Path

import pytest

import jwtguard

ROOT = Path(__file__).resolve().parent.parent
#: Set by scripts/test-wheel.sh, which runs the suite against the installed wheel.
TEST_INSTALLED = os.environ.get("JWTGUARD_TEST_INSTALLED") == "1"


def test_the_package_is_typed() -> None:
    assert importlib.resources.files("jwtguard").joinpath("py.typed").is_file()


def test_the_pytest_plugin_is_registered_by_its_entry_point() -> None:
    [entry_point] = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "jwtguard"]
    assert entry_point.value == "jwtguard.testing.pytest_plugin"
    assert hasattr(entry_point.load(), "jwt_issuer")


@pytest.mark.parametrize(
    "module",
    [
        "jwtguard.testing",
        "jwtguard.testing.issuer",
        "jwtguard.contrib.spectacular",
        "jwtguard.management.commands.jwtguard",
        "jwtguard.authentication",
        "jwtguard.middleware",
    ],
)
def test_the_parts_users_import_are_installed(module: str) -> None:
    importlib.import_module(module)


def test_every_module_imports() -> None:
    names = [info.name for info in pkgutil.walk_packages(jwtguard.__path__, "jwtguard.")]
    assert len(names) > 20
    for name in names:
        importlib.import_module(name)


def test_the_installed_version_is_the_package_version() -> None:
    assert importlib.metadata.version("jwtguard") == jwtguard.__version__


def test_what_is_under_test_is_what_was_asked_for() -> None:
    installed = "site-packages" in Path(jwtguard.__file__).parts
    assert installed == TEST_INSTALLED


def test_the_metadata_states_the_supported_ground() -> None:
    metadata = importlib.metadata.metadata("jwtguard")
    classifiers = metadata.get_all("Classifier") or []
    for python in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {python}" in classifiers
    for django in ("4.2", "5.2", "6.0", "6.1"):
        assert f"Framework :: Django :: {django}" in classifiers
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["License-Expression"] == "MIT" or metadata["License"] == "MIT"
    [django_requirement] = [r for r in metadata.get_all("Requires-Dist") or [] if re.match(r"django[<>=~! ]", r, re.I)]
    # A floor and no cap: installing jwtguard never moves a user's Django.
    assert re.fullmatch(r"(?i)django>=4\.2", django_requirement.replace(" ", "")), django_requirement
