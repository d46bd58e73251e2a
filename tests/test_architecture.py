"""The import contract of ARCHITECTURE.md, read from the code's own imports (every `import` / `from ... import`,
including the ones inside functions): `core` imports nothing of ours, no package imports one above it, faces are
imported by nobody below them, and no two packages import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. A package may import those on lower layers only; packages on one layer know nothing of each
# other. The faces (api, cli, ui, edge) and bench sit on top; cli starts the api for `dossier serve` and exports the
# edge bundle for `dossier export edge`.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("domains",),
    ("models",),
    ("ingest", "retrieval", "generation"),
    ("rag",),
    ("eval",),
    ("training",),
    ("api", "ui", "edge"),
    ("cli",),
    ("bench",),
)
FACES = ("api", "cli", "ui", "edge")
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def package_imports() -> dict[tuple[str, str], set[str]]:
    """(importing package, imported package) -> the files where it happens, for every pair of our packages."""
    edges: dict[tuple[str, str], set[str]] = {}
    for package in LAYER_OF:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                target = module.split(".")[0]
                if target in LAYER_OF and target != package:
                    edges.setdefault((package, target), set()).add(str(path.relative_to(ROOT)))
    return edges


def violations(edges: dict[tuple[str, str], set[str]]) -> list[str]:
    found = []
    for (source, target), files in sorted(edges.items()):
        where = ", ".join(sorted(files))
        if source == "core":
            found.append(f"core imports {target} ({where}): core is the vocabulary and imports nothing of ours")
        elif LAYER_OF[target] >= LAYER_OF[source]:
            found.append(f"{source} imports {target} ({where}): an arrow that runs up or sideways")
        if target in FACES and source not in (*FACES, "bench"):
            found.append(f"{source} imports the face {target} ({where})")
        if (target, source) in edges:
            found.append(f"{source} and {target} import each other ({where})")
    return found


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() or p.name == "bench"}
    assert packages <= set(LAYER_OF) | {"tests"}, f"place {packages - set(LAYER_OF)} in LAYERS and ARCHITECTURE.md"


def test_the_import_contract_holds() -> None:
    assert violations(package_imports()) == []


@pytest.mark.parametrize(
    ("edges", "broken"),
    [
        ({("core", "rag"): {"core/x.py"}}, "core imports rag"),
        ({("retrieval", "rag"): {"retrieval/x.py"}}, "retrieval imports rag"),
        ({("eval", "cli"): {"eval/x.py"}}, "eval imports the face cli"),
        ({("ingest", "retrieval"): {"ingest/x.py"}}, "ingest imports retrieval"),
        ({("rag", "eval"): {"rag/x.py"}, ("eval", "rag"): {"eval/y.py"}}, "import each other"),
    ],
)
def test_the_contract_check_catches_each_kind_of_breach(edges: dict, broken: str) -> None:
    assert any(broken in v for v in violations(edges))
