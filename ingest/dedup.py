"""Exact and near-duplicate detection.

Identity: two documents can only be duplicates when they agree on the *identity fields*, the metadata fields that
every declared source with metadata carries (legal: law_id, law_name, article_no, status, version_date ...;
sources without metadata, like answer passages, have none of them and are compared with each other). So the
same article in two files is a duplicate, but one article in the 1982 and the 2018 Constitution, or the
boilerplate "本法自公布之日起施行。" in two laws, are not: they are different evidence.
- exact: the same identity fields, the same normalised text, and the same title when the source declares
  title fields (a file's title is only its name: two copies of a PDF are duplicates whatever they are called);
- near: the same identity fields and a MinHash Jaccard estimate over character 3-grams of title + text at or
  above the domain's threshold (Broder 1997; datasketch's MinHash LSH finds the candidates).
The first document seen wins; later ones are recorded as duplicates of it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from domains.config import CorpusSource

NUM_PERM = 64  # 64 permutations: the Jaccard estimate's standard error is about 0.06 at J=0.5, 0.03 at J=0.95
SHINGLE = 3
SCHEME = "affine32"  # datasketch >= 2's default, 32-bit: fits crc32, which (unlike hash()) is stable across runs


def identity_fields(sources: Sequence[CorpusSource]) -> tuple[str, ...]:
    """The metadata fields that every source with metadata declares, in the first such source's order."""
    declaring = [s.metadata_fields for s in sources if s.metadata_fields]
    if not declaring:
        return ()
    common = set(declaring[0]).intersection(*declaring[1:])
    return tuple(f for f in declaring[0] if f in common)


def group_key(metadata: Mapping[str, Any], fields: Sequence[str]) -> str:
    return json.dumps([metadata.get(f) for f in fields], ensure_ascii=False, default=str)


def content_hash(group: str, title: str, text: str) -> str:
    return hashlib.sha256("\x1f".join((group, title, text)).encode("utf-8")).hexdigest()


@functools.cache
def _permutations():
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM, seed=1, scheme=SCHEME)
    return template.permutations  # drawing them is the slow part of a new MinHash


def minhash(text: str):
    from datasketch import MinHash

    shingles = {text[i : i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    sketch = MinHash(num_perm=NUM_PERM, hashfunc=zlib.crc32, permutations=_permutations(), scheme=SCHEME)
    sketch.update_batch([s.encode("utf-8") for s in shingles])
    return sketch


class MinHashNearDuplicates:
    """Near-duplicate lookup per identity group. Kept documents are registered cheaply and only sketched when a
    candidate arrives in their group (in the legal corpus every article is its own group: nothing is sketched)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._pending: dict[str, list[tuple[str, str]]] = {}  # group -> [(doc_id, title + text)]
        self._lsh: dict[str, Any] = {}  # group -> MinHashLSH
        self._sketches: dict[str, Any] = {}  # doc_id -> MinHash

    def add(self, doc_id: str, group: str, text: str) -> None:
        if group in self._lsh:
            self._insert(group, doc_id, minhash(text))
        else:
            self._pending.setdefault(group, []).append((doc_id, text))

    def find_or_add(self, doc_id: str, group: str, text: str) -> tuple[str, float] | None:
        """(doc id, estimated Jaccard) of the most similar registered document at or above the threshold; when
        there is none, `doc_id` is registered (it will be kept) and None is returned."""
        if group not in self._pending and group not in self._lsh:
            self._pending[group] = [(doc_id, text)]
            return None
        lsh = self._build(group)
        sketch = minhash(text)
        scored = [(self._sketches[d].jaccard(sketch), d) for d in lsh.query(sketch)]
        best = max(scored, default=None)
        if best is None or best[0] < self.threshold:
            self._insert(group, doc_id, sketch)
            return None
        return best[1], float(best[0])

    def _build(self, group: str):
        from datasketch import MinHashLSH

        if group not in self._lsh:
            self._lsh[group] = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)
        for doc_id, text in self._pending.pop(group, []):
            self._insert(group, doc_id, minhash(text))
        return self._lsh[group]

    def _insert(self, group: str, doc_id: str, sketch) -> None:
        if doc_id not in self._sketches:
            self._lsh[group].insert(doc_id, sketch)
            self._sketches[doc_id] = sketch


def near_text(title: str, text: str) -> str:
    return f"{title}\n{text}" if title else text
