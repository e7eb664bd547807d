"""Print the requirements an image installs, one a line, from pyproject.toml.

    python3 scripts/image_requirements.py full [EXTRA,...]   every dependency (+ extras)
    python3 scripts/image_requirements.py sidecar            capture's share of them

The sidecar image leaves out the statistics stack (numpy, scipy, pandas, pyarrow): the
capture path (proxy, adapters, sinks, spool, Kafka) never imports it, and
`tests/deploy/test_image.py` checks that the sidecar runs without it. Reading
pyproject.toml keeps one list of dependencies: a new one reaches both images, and the
constraints file pins them alike.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Only the detectors use these (and pandas needs numpy); the sidecar image goes without.
STATISTICS = frozenset({"numpy", "scipy", "pandas", "pyarrow"})


def name_of(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    if match is None:
        raise SystemExit(f"cannot read the requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def requirements(target: str, extras: list[str], pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    listed: list[str] = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    if target == "sidecar":
        return [line for line in listed if name_of(line) not in STATISTICS]
    return listed


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("full", "sidecar"):
        print(__doc__, file=sys.stderr)
        return 2
    extras = [extra for extra in (argv[1] if len(argv) > 1 else "").split(",") if extra]
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    print("\n".join(requirements(argv[0], extras, pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
