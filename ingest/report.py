"""What an ingest run did: counts, and every skipped input with its reason. Saved as `report.json`."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An input that was not ingested: a whole file, or one record (`path:line`)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Counts of one run. `documents`, `chunks`, and the duplicate counts describe the store after the run; the
    `*_added` / `*_removed` counts are what this run changed. `skipped` also repeats the skips of unchanged files,
    so a bad file stays listed until it is fixed or removed."""

    domain: str
    files_seen: int = 0
    files_ingested: int = 0  # parsed in this run (new or changed)
    files_unchanged: int = 0  # same content hash as last time: not parsed
    files_skipped: int = 0  # nothing usable in the file
    files_removed: int = 0  # gone since the last run: their documents and chunks were removed
    documents: int = 0
    documents_added: int = 0
    documents_removed: int = 0
    chunks: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_unchanged: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    id_conflicts: int = 0
    seconds: float = 0.0
    skipped: tuple[SkippedItem, ...] = ()

    @property
    def completed_with_skips(self) -> bool:
        return bool(self.skipped)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["skipped"] = [dataclasses.asdict(item) for item in self.skipped]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        skipped = tuple(SkippedItem(**item) for item in data.get("skipped", ()))
        return cls(**{**data, "skipped": skipped})

    def summary(self, max_skipped: int = 20) -> str:
        lines = [
            f"ingest {self.domain}: {self.files_seen} files seen, {self.files_ingested} ingested, "
            f"{self.files_unchanged} unchanged, {self.files_skipped} skipped, {self.files_removed} removed",
            f"  documents: {self.documents} (+{self.documents_added} -{self.documents_removed}); "
            f"duplicates: {self.exact_duplicates} exact, {self.near_duplicates} near, "
            f"{self.id_conflicts} id conflicts",
            f"  chunks: {self.chunks} (+{self.chunks_added} -{self.chunks_removed}, {self.chunks_unchanged} unchanged)"
            f" in {self.seconds:.2f} s",
        ]
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} input(s):")
            lines += [f"    {item.path}: {item.reason}" for item in self.skipped[:max_skipped]]
            if len(self.skipped) > max_skipped:
                lines.append(f"    ... and {len(self.skipped) - max_skipped} more (see report.json)")
        return "\n".join(lines)


def write_report(report: IngestReport, path: Path) -> None:
    """Atomically replace `path` with the report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def read_report(path: Path) -> IngestReport:
    return IngestReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
