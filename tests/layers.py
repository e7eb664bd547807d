"""Who imports whom among modeltap's packages, read from the source (every import, also the
ones inside functions and under TYPE_CHECKING), and the rules the layers keep.

Run ``python -m tests.layers [ROOT]`` for the table of a checkout (ROOT defaults to this
one), and the rules it breaks.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

PACKAGES = ("modeltap", "collector", "detectors", "exporters", "monitor")
CORE = "modeltap"
MIDDLE = ("collector", "detectors", "exporters")
APPLICATION = "monitor"
# Outside the product: they may use any layer, as a user of it does.
CONSUMERS = ("tests", "bench")


def imports(root: Path) -> Counter[tuple[str, str]]:
    """(importer, imported) top-level packages, counted once per import statement."""
    edges: Counter[tuple[str, str]] = Counter()
    for package in (*PACKAGES, *CONSUMERS):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module]
                else:
                    continue
                for target in targets:
                    top = target.split(".")[0]
                    if top in PACKAGES and top != package:
                        edges[(package, top)] += 1
    return edges


def broken(edges: Counter[tuple[str, str]]) -> list[str]:
    """Every import that runs against the layers, as a sentence."""
    problems = []
    for (importer, imported), count in sorted(edges.items()):
        if importer in CONSUMERS:
            continue
        if importer == CORE:
            problems.append(f"the core {CORE}/ imports {imported}/ ({count}x)")
        elif importer in MIDDLE and imported in MIDDLE:
            problems.append(f"{importer}/ imports {imported}/ ({count}x); they share only the core")
        if imported == APPLICATION:
            problems.append(f"{importer}/ imports the application {APPLICATION}/ ({count}x)")
    return problems


def table(edges: Counter[tuple[str, str]]) -> str:
    """A markdown table: importer by row, imported by column, with counts."""
    rows = [p for p in (*PACKAGES, *CONSUMERS) if any(e[0] == p for e in edges)]
    lines = ["| imports → | " + " | ".join(PACKAGES) + " |", "|---" * (len(PACKAGES) + 1) + "|"]
    for importer in rows:
        cells = [str(edges.get((importer, imported), "")) or "·" for imported in PACKAGES]
        lines.append(f"| {importer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    edges = imports(root)
    print(table(edges))
    problems = broken(edges)
    for problem in problems:
        print(f"broken: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
