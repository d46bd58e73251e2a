"""A bundle's manifest.json: what it was exported from (versions, sources, settings) and the sha256 and size of
every other file in the folder. `verify_bundle` checks them: a missing, changed or unexpected file is a
`BundleError` that names it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.hashing import sha256_file
from edge.errors import BundleError
from edge.layout import MANIFEST

FORMAT = 1
KIND = "dossier-edge-bundle"
SHOWN = 5  # file names listed in an error before "and N more"


def bundle_files(root: Path) -> list[Path]:
    """Every file of the bundle but the top-level manifest and the bytecode Python writes when the runner runs."""
    return [p for p in sorted(root.rglob("*"))
            if p.is_file() and p != root / MANIFEST and "__pycache__" not in p.relative_to(root).parts]


def file_table(root: Path) -> dict[str, dict[str, Any]]:
    """{relative posix path: {"sha256", "size"}} of `bundle_files(root)`."""
    return {p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
            for p in bundle_files(root)}


def write_manifest(root: Path, info: Mapping[str, Any]) -> dict[str, Any]:
    """Write `root/manifest.json` (`info` + format, kind and the file table); returns what was written."""
    data = {"format": FORMAT, "kind": KIND, **info, "files": file_table(root)}
    (root / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                 encoding="utf-8")
    return data


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not root.is_dir():
        raise BundleError(f"{root} is not a bundle folder; export one with `dossier export edge --domain D --out DIR`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise BundleError(f"{root} has no {MANIFEST}: it is not a whole bundle; export it again") from err
    except ValueError as err:
        raise BundleError(f"{path} is not valid JSON ({err}); export the bundle again") from err
    if data.get("kind") != KIND or data.get("format") != FORMAT:
        raise BundleError(f"{path}: not a format-{FORMAT} {KIND} (found kind {data.get('kind')!r}, format "
                          f"{data.get('format')!r}); export it again with this version of dossier")
    return data


def _listed(paths: list[str]) -> str:
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def verify_bundle(root: Path, *, hashes: bool = True) -> dict[str, Any]:
    """The manifest, after checking every file's size (and, with `hashes`, its sha256) against it."""
    manifest = read_manifest(root)
    expected: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = {p.relative_to(root).as_posix() for p in bundle_files(root)}
    problems = []
    if missing := sorted(set(expected) - present):
        problems.append(f"missing: {_listed(missing)}")
    if extra := sorted(present - set(expected)):
        problems.append(f"not in the manifest: {_listed(extra)}")
    changed = [rel for rel in sorted(set(expected) & present) if _changed(root / rel, expected[rel], hashes)]
    if changed:
        problems.append(f"changed since export: {_listed(changed)}")
    if problems:
        raise BundleError(f"bundle {root} does not match its manifest ({'; '.join(problems)}); "
                          "copy it again from the .tar.gz or export it again")
    return manifest


def _changed(path: Path, entry: Mapping[str, Any], hashes: bool) -> bool:
    if path.stat().st_size != entry.get("size"):
        return True
    return hashes and sha256_file(path) != entry.get("sha256")
