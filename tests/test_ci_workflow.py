"""The GitHub Actions definition cannot run here: it is parsed, and held to the matrix scripts/matrix.sh runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
MATRIX = ROOT / "scripts" / "matrix.sh"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def script_pairs() -> set[str]:
    text = MATRIX.read_text()
    default = re.search(r'DEFAULT_PAIRS="([^"]*)"', text)
    assert default is not None, "scripts/matrix.sh has no DEFAULT_PAIRS"
    return set(default.group(1).split())


def test_it_has_the_expected_jobs(workflow: dict[str, Any]) -> None:
    assert set(workflow["jobs"]) == {"lint", "tests", "distributions"}
    assert workflow["permissions"] == {"contents": "read"}


def test_its_matrix_is_the_one_the_test_command_runs(workflow: dict[str, Any]) -> None:
    rows = workflow["jobs"]["tests"]["strategy"]["matrix"]["include"]
    pairs = {":".join(filter(None, (row["python"], row["django"], row["suite"], row.get("flavour")))) for row in rows}
    assert pairs == script_pairs() - {"wheel"}


def test_every_supported_python_and_django_is_in_it(workflow: dict[str, Any]) -> None:
    rows = workflow["jobs"]["tests"]["strategy"]["matrix"]["include"]
    assert {row["python"] for row in rows} == {"3.10", "3.11", "3.12", "3.13"}
    assert {row["django"] for row in rows} == {"4.2", "5.2", "6.0", "6.1"}
    # Django 6.x needs Python 3.12 or newer.
    assert all(row["python"] in ("3.12", "3.13") for row in rows if row["django"].startswith("6."))


def test_the_steps_call_the_projects_own_scripts(workflow: dict[str, Any]) -> None:
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    for script in ("scripts/lint.sh", "scripts/docs.sh", "scripts/matrix.sh"):
        assert any(script in run for run in runs), script
    for run in runs:
        for script in re.findall(r"scripts/[\w.-]+", run):
            assert (ROOT / script).is_file(), script
    distributions = workflow["jobs"]["distributions"]
    assert any(step.get("env", {}).get("JWTGUARD_PAIRS") == "wheel" for step in distributions["steps"])
