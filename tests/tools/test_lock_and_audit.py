"""The lock file pins every dependency pyproject declares, and the audit says what it did."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _load_audit():
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "tools" / "audit_deps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def test_lock_pins_every_declared_dependency_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = _pins()
    for spec in map(Requirement, declared):
        name = canonicalize_name(spec.name)
        assert name in pins, f"{spec.name} is not pinned in requirements.lock (run make lock)"
        assert spec.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {spec.name}=={pins[name]}, outside {spec.specifier}"
        )


def test_lock_pins_exact_versions_only() -> None:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "==" in line, f"unpinned line in requirements.lock: {line!r}"


@pytest.mark.parametrize(
    ("report", "code", "first"),
    [
        (
            {"dependencies": [{"name": "a", "skip_reason": "not found"}], "fixes": []},
            0,
            "audit: SKIPPED",
        ),
        (
            {"dependencies": [{"name": "a", "version": "1", "vulns": []}]},
            0,
            "audit: 1 of 1 pinned dependencies audited",
        ),
        (
            {
                "dependencies": [
                    {"name": "a", "version": "1", "vulns": [{"id": "X-1", "fix_versions": ["2"]}]},
                    {"name": "b", "skip_reason": "not found"},
                ]
            },
            1,
            "audit: 1 of 2 pinned dependencies audited, 1 skipped",
        ),
        (
            {
                "dependencies": [
                    {"name": "a", "version": "1", "vulns": [{"id": "Y", "fix_versions": []}]}
                ]
            },
            0,
            "audit: 1 of 1",
        ),
    ],
)
def test_audit_fails_only_on_fixable_vulnerabilities_and_never_hides_a_skip(
    report, code, first
) -> None:
    lines, got = _load_audit().summarise(report)
    assert got == code
    assert lines[0].startswith(first)
    if code == 1:
        assert any(line.startswith("VULNERABLE a==1: X-1 (fixed in 2)") for line in lines)
