"""The runner copied into the bundle: the `edge` package (less `edge.export`) and every module of the project it
imports, directly or inside a function, found by reading the imports (as tests/test_architecture.py does). The
copies are byte for byte, so the bundle's citation check, prompts and retrieval are the service's own code; the
manifest's sha256 of each says so. None of them imports torch at module level (tests/edge checks it)."""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
OURS = ("core", "domains", "models", "ingest", "retrieval", "generation", "rag", "eval", "training", "api", "cli",
        "ui", "edge")
ENTRY = ("edge.__main__", "edge.cli", "edge.server", "edge.runtime")
LEFT_OUT = ("edge.export",)  # the exporter runs in the project, never in the bundle


def _file(module: str) -> Path | None:
    base = PROJECT / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`


def runner_modules() -> dict[str, Path]:
    """module name -> file, for the entry modules and everything of ours they import, with their packages."""
    found: dict[str, Path] = {}
    todo = list(ENTRY)
    while todo:
        module = todo.pop()
        if module in found or module.startswith(LEFT_OUT) or (path := _file(module)) is None:
            continue
        found[module] = path
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [m for m in _imports(path) if m.split(".")[0] in OURS]
    return found


def copy_runner(dest: Path) -> list[str]:
    """Copy the runner's modules under `dest` (importable with dest on sys.path); returns their relative paths."""
    copied = []
    for path in sorted(runner_modules().values()):
        relative = path.relative_to(PROJECT)
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / relative)
        copied.append(relative.as_posix())
    return copied
