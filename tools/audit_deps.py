"""Audit the pinned dependencies of a lock file for known vulnerabilities with pip-audit.

Exit 1 when a pinned release has a known vulnerability with a fixed release available;
exit 0 otherwise. pip-audit asks PyPI's per-release JSON API; when that cannot be reached
(or answers nothing for these releases) pip-audit *skips* each dependency and still exits
0. This script says so plainly — "SKIPPED", with the count and pip-audit's reason — instead
of reporting a clean audit it never made.

Usage: ``python tools/audit_deps.py requirements.lock``
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "requirements.lock")
    if not lock.is_file():
        print(f"audit: lock file {lock} not found", file=sys.stderr)
        return 2
    cmd = [
        sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--no-deps",
        "--disable-pip", "--progress-spinner", "off", "--format", "json",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print("audit: SKIPPED — pip-audit gave no report (its vulnerability service is")
        print("likely unreachable from here). Its output:")
        print((proc.stderr or proc.stdout).strip()[-2000:])
        return 0
    lines, code = summarise(report)
    print("\n".join(lines))
    return code


def summarise(report: dict) -> tuple[list[str], int]:
    """Lines to print and the exit code for one pip-audit JSON report."""
    lines: list[str] = []
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [
        (d["name"], d["version"], v)
        for d in audited
        for v in d.get("vulns", [])
        if v.get("fix_versions")
    ]
    unfixable = sum(1 for d in audited for v in d.get("vulns", []) if not v.get("fix_versions"))
    if skipped and not audited:
        lines += [
            f"audit: SKIPPED — none of the {len(deps)} pinned dependencies could be audited;",
            "the vulnerability service (PyPI's per-release JSON API) is not reachable from",
            f"this machine. pip-audit's reason, e.g.: {skipped[0]['skip_reason']}",
        ]
        return lines, 0
    head = f"audit: {len(audited)} of {len(deps)} pinned dependencies audited"
    lines.append(head + (f", {len(skipped)} skipped (could not be audited)" if skipped else ""))
    if unfixable:
        lines.append(f"audit: {unfixable} known vulnerabilities without a fixed release (no fail)")
    for name, version, vuln in vulnerable:
        fixes = ", ".join(vuln["fix_versions"])
        lines.append(f"VULNERABLE {name}=={version}: {vuln['id']} (fixed in {fixes})")
    if vulnerable:
        return lines, 1
    lines.append("audit: no known vulnerability with a fix available")
    return lines, 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
