"""A real ingest or index build, slowed a little and narrated, for the crash tests to kill with SIGKILL.

    python crash_worker.py ingest <domain root> <workspace>
    python crash_worker.py build <chunks.sqlite> <index root> <vectors dir> <cache identity> [<builds> [<keep>]]

It prints "ready" once imported, then one line per step as it happens ("load", "add", "manifest" while ingesting;
"embed" per slice, "write", "filled", "flip", "flipped" while building; "done" at the end), flushed, so the test
can kill it after a chosen step. Each step sleeps a few milliseconds, so a kill lands inside the run, not after it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from crash_kit import builder, domain, hash_embedder

EMBED_SLICE = 16  # texts per committed slice (the product's 512 would leave one slice for this corpus)


def event(name: str, pause_s: float = 0.0) -> None:
    print(name, flush=True)
    time.sleep(pause_s)


def narrate_ingest() -> None:
    import ingest.pipeline
    from ingest.store import ChunkStore

    load, add, manifest = ingest.pipeline.load_source, ChunkStore.add_document, ingest.pipeline._write_manifest
    ingest.pipeline.load_source = lambda file, limits: (event("load", 0.01), load(file, limits))[1]
    ChunkStore.add_document = lambda self, *a: (event("add", 0.002), add(self, *a))[1]  # type: ignore[method-assign]
    ingest.pipeline._write_manifest = lambda *a: (manifest(*a), event("manifest"))[0]


def narrate_build() -> None:
    import retrieval.document_vectors
    from retrieval.store import IndexStore

    retrieval.document_vectors.EMBED_SLICE = EMBED_SLICE
    write, point = IndexStore.write, IndexStore._point_current_at

    def narrated_write(self: IndexStore, fill):  # noqa: ANN001, ANN202
        event("write")
        return write(self, lambda tmp: (fill(tmp), event("filled"))[0])

    IndexStore.write = narrated_write  # type: ignore[method-assign]
    IndexStore._point_current_at = lambda self, v: (event("flip"), point(self, v), event("flipped"))[1]


def main(argv: list[str]) -> int:
    mode, args = argv[1], [Path(a) for a in argv[2:]]
    if mode == "ingest":
        from ingest.pipeline import run_ingest

        narrate_ingest()
        event("ready")
        run_ingest(domain(args[0]), workspace=args[1], progress=False)
    else:
        from ingest.store import ChunkStore

        narrate_build()
        embedder = hash_embedder(str(args[3]))
        embed = embedder.embed
        embedder.embed = lambda texts, role="document": (event("embed", 0.02), embed(texts, role))[1]
        builds, keep = (int(argv[i]) if len(argv) > i else d for i, d in ((6, 1), (7, 3)))
        event("ready")
        for _ in range(builds):
            with ChunkStore(args[0]) as source:
                builder(args[1], args[2], embedder, keep=keep).build(source)
    event("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
