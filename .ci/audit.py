"""Dependency audit: no installed distribution may carry a known vulnerability or be a yanked release.

Why not plain `pip-audit`: its PyPI source asks `https://pypi.org/pypi/<name>/<version>/json`, and its OSV
source asks api.osv.dev; from this machine only the registries are reachable and PyPI answers just the
project endpoint `https://pypi.org/pypi/<name>/json`. That endpoint carries the same advisory data (PyPI's
feed of the Python Packaging Advisory Database / OSV) for the project's latest release, and every
release's yanked flag. So:

- installed == latest release: its advisories are exactly the ones PyPI lists → any one fails the audit;
- installed older than latest: PyPI does not say here whether the advisories that newer releases fixed
  reach back to ours → listed as "behind" (with the version to move to), and fails with `--strict`;
- a yanked installed release fails the audit.

Run with the interpreter of the environment to audit: `.venv/bin/python .ci/audit.py [--strict]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import distributions

from jose.backends import ECKey, RSAKey
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

PROJECT_URL = "https://pypi.org/pypi/{name}/json"
SELF = {"xinyi"}  # the project under audit, installed editable; not on PyPI


def _jose_never_uses_ecdsa() -> bool:
    """python-jose always installs `ecdsa`, but with `cryptography` present it picks the cryptography backend
    for every key type, and we use jose only for JWE (lending/encryption.py): ecdsa's code never runs."""
    return all(key.__module__ == "jose.backends.cryptography_backend" for key in (ECKey, RSAKey))


# Advisories accepted with a reason that the audit re-checks on every run: when the check stops holding, the
# advisory fails the audit again.
ACCEPTED = {
    # Minerva timing side channel in ecdsa's own signing (CVE-2024-23342); the maintainers will not fix it.
    ("ecdsa", "GHSA-wj6h-64fc-37mp"): _jose_never_uses_ecdsa,
}


@dataclass
class Finding:
    name: str
    installed: str
    latest: str | None = None
    advisories: list[str] = field(default_factory=list)
    yanked: bool = False
    error: str | None = None
    accepted: list[str] = field(default_factory=list)

    @property
    def behind(self) -> bool:
        if self.latest is None:
            return False
        try:
            return Version(self.installed) < Version(self.latest)
        except InvalidVersion:
            return self.installed != self.latest


def fetch(name: str, attempts: int = 3) -> dict[str, object]:
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(PROJECT_URL.format(name=name), timeout=20) as response:  # noqa: S310
                return json.load(response)  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise
            last = exc
        except (urllib.error.URLError, TimeoutError) as exc:
            last = exc
        time.sleep(1 + attempt)
    raise RuntimeError(f"{name}: PyPI did not answer ({last})")


def audit(name: str, installed: str) -> Finding:
    finding = Finding(name=name, installed=installed)
    try:
        data = fetch(name)
    except Exception as exc:  # reported per package; the audit then fails
        finding.error = str(exc)
        return finding
    info = data.get("info") or {}
    finding.latest = info.get("version") if isinstance(info, dict) else None
    releases = data.get("releases") or {}
    files = releases.get(installed, []) if isinstance(releases, dict) else []
    finding.yanked = bool(files) and all(f.get("yanked") for f in files)
    if finding.latest == installed:
        for vuln in data.get("vulnerabilities") or []:  # type: ignore[union-attr]
            if vuln.get("withdrawn"):
                continue
            names = [vuln.get("id", "?"), *vuln.get("aliases", [])]
            accepted = next((ACCEPTED[(name, n)] for n in names if (name, n) in ACCEPTED), None)
            if accepted is not None and accepted():
                finding.accepted.append(names[0])
                continue
            ids = ", ".join(names)
            fixed = ", ".join(vuln.get("fixed_in", [])) or "no fix yet"
            finding.advisories.append(f"{ids} (fixed in {fixed})")
    return finding


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="also fail when a dependency is behind its latest")
    args = parser.parse_args()

    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in distributions()
        if dist.metadata["Name"] and canonicalize_name(dist.metadata["Name"]) not in SELF
    }
    with ThreadPoolExecutor(max_workers=16) as pool:
        findings = sorted(pool.map(lambda item: audit(*item), installed.items()), key=lambda f: f.name)

    vulnerable = [f for f in findings if f.advisories]
    yanked = [f for f in findings if f.yanked]
    unreachable = [f for f in findings if f.error]
    behind = [f for f in findings if f.behind and not f.advisories]

    for f in vulnerable:
        print(f"VULNERABLE {f.name} {f.installed}: {'; '.join(f.advisories)}")
    for f in yanked:
        print(f"YANKED     {f.name} {f.installed}")
    for f in unreachable:
        print(f"UNAUDITED  {f.name} {f.installed}: {f.error}")
    for f in findings:
        if f.accepted:
            print(f"accepted   {f.name} {f.installed}: {', '.join(f.accepted)} (see ACCEPTED in .ci/audit.py)")
    for f in behind:
        print(f"behind     {f.name} {f.installed} (latest {f.latest}; advisories only known for the latest)")
    audited = len(findings) - len(unreachable)
    print(f"audit: {len(findings)} distributions, {audited} checked against PyPI's advisories, "
          f"{len(vulnerable)} vulnerable, {len(yanked)} yanked, {len(behind)} behind latest, "
          f"{len(unreachable)} unreachable")
    failed = bool(vulnerable or yanked or unreachable or (args.strict and behind))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
