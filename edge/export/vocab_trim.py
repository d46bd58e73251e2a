"""The bundle's query embedder, trimmed to the vocabulary its domain uses.

EmbeddingGemma's token table has 262,144 rows: 805 MB in fp32 and still 201 MB in int8, most of the bundle's
embedder, for a tokenizer built for a hundred languages. A Chinese domain's queries use a small part of it. The
bundle keeps:
- every token the original tokenizer produces on the domain's texts (its chunks, with the embedder's prompts),
- every single-character token, every token of CJK characters only, the 256 byte-fallback tokens, the special
  tokens, and the ASCII tokens among the first `COMMON_ASCII_BELOW` ids (the commonest English pieces),
- and, for BPE, every piece a kept token is merged from, so that BPE can still build it (WordPiece matches the
  longest token greedily: dropping tokens a text never matched cannot change how it splits);
then numbers them in their original order and keeps only those rows of the token table.

On the texts it was trimmed on, the trimmed tokenizer gives exactly the original tokens, which the export checks;
any other string falls back to its kept pieces, at worst to UTF-8 bytes, as BPE does for any string it never saw.
The rows kept are the original rows, so a query made of kept tokens gets the same vector as before.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import ExportError

log = logging.getLogger(__name__)

COMMON_ASCII_BELOW = 20_000  # Gemma's ids rise with rarity: ~15k ASCII pieces, the English a user may type
SPACE = "\u2581"  # SentencePiece's word-boundary mark, as the BPE vocabulary spells a leading space
BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")
SHAPE_ONLY = ("Shape", "Size")  # ops that read input_ids' shape, not its values: renumbering cannot change them
CJK_ONLY = re.compile(r"[\u2581\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")


@dataclass(frozen=True, slots=True)
class TrimmedVocab:
    spec: dict[str, Any]  # the trimmed tokenizer.json
    old_ids: np.ndarray  # old_ids[new_id] = the original id (the rows of the token table to keep)

    def new_id(self, old_id: int) -> int:
        found = int(np.searchsorted(self.old_ids, old_id))
        if found >= len(self.old_ids) or self.old_ids[found] != old_id:
            raise ExportError(f"token {old_id} is not in the trimmed vocabulary")
        return found


def general_token(token: str, token_id: int) -> bool:
    """Kept whatever the domain's texts hold: what a user's query may bring that the corpus does not."""
    text = token.replace(SPACE, "").removeprefix("##")  # "##": WordPiece's mark of a word's continuation
    return (len(text) <= 1 or BYTE_TOKEN.fullmatch(token) is not None or CJK_ONLY.fullmatch(token) is not None
            or (token_id < COMMON_ASCII_BELOW and text.isascii()))


def _vocab_model(spec: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer's model, if it is one whose vocabulary can be cut: BPE (with its merges closed over) or
    WordPiece (greedy longest match: dropping tokens a text never matched cannot change how it splits)."""
    model = spec.get("model") or {}
    if model.get("type") not in ("BPE", "WordPiece") or not isinstance(model.get("vocab"), dict):
        raise ExportError(f"the embedder's tokenizer is {model.get('type')!r}; only BPE and WordPiece vocabularies "
                          "are trimmed here: export with --embedder-vocab full")
    return model


def _merge_pair(merge: str | Sequence[str]) -> tuple[str, str]:
    if isinstance(merge, str):  # older tokenizer.json files write a merge as "left right"
        left, right = merge.split(" ", 1)
        return left, right
    return merge[0], merge[1]


def _special_ids(spec: dict[str, Any]) -> set[int]:
    return {int(t["id"]) for t in spec.get("added_tokens", []) if t.get("special")}


def _close_under_merges(kept: set[str], merges: Sequence[tuple[str, str]]) -> set[str]:
    """Add the pieces every kept token is merged from, until nothing new comes in."""
    producers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for left, right in merges:
        producers[left + right].append((left, right))
    pending = list(kept)
    while pending:
        for left, right in producers.get(pending.pop(), ()):
            for piece in (left, right):
                if piece not in kept:
                    kept.add(piece)
                    pending.append(piece)
    return kept


def trim_vocabulary(spec: dict[str, Any], seen_ids: Iterable[int]) -> TrimmedVocab:
    """The tokenizer.json `spec` keeping `seen_ids` (the tokens the domain's texts produce), the general tokens and
    their merge ancestors, renumbered in the original order."""
    model = _vocab_model(spec)
    vocab: dict[str, int] = model["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    merges = [_merge_pair(m) for m in model.get("merges", [])]
    keep_ids = set(seen_ids) | _special_ids(spec) | {i for t, i in vocab.items() if general_token(t, i)}
    if model.get("unk_token") in vocab:
        keep_ids.add(vocab[model["unk_token"]])
    kept = _close_under_merges({by_id[i] for i in keep_ids if i in by_id}, merges)
    old_ids = np.array(sorted(vocab[t] for t in kept), dtype=np.int64)
    renumber = {int(old): new for new, old in enumerate(old_ids)}
    trimmed = json.loads(json.dumps(spec))  # a deep copy: the caller's spec stays as it was
    trimmed["model"]["vocab"] = {by_id[int(old)]: new for new, old in enumerate(old_ids)}
    if "merges" in model:
        trimmed["model"]["merges"] = [[a, b] for a, b in merges if a in kept and b in kept and a + b in kept]
    trimmed["added_tokens"] = [{**t, "id": renumber[int(t["id"])]} for t in spec.get("added_tokens", [])
                               if int(t["id"]) in renumber]
    trimmed["post_processor"] = _renumber_post_processor(spec.get("post_processor"), renumber)
    if spec.get("padding"):
        trimmed["padding"]["pad_id"] = renumber[int(spec["padding"]["pad_id"])]
    log.info("embedder vocabulary trimmed: %d of %d tokens, %d of %d merges", len(old_ids), len(vocab),
             len(trimmed["model"].get("merges", [])), len(merges))
    return TrimmedVocab(trimmed, old_ids)


def _renumber_post_processor(processor: dict[str, Any] | None, renumber: dict[int, int]) -> dict[str, Any] | None:
    if processor is None:
        return None
    processor = json.loads(json.dumps(processor))
    if processor.get("type") == "Sequence":
        processor["processors"] = [_renumber_post_processor(p, renumber) for p in processor["processors"]]
    elif processor.get("type") == "TemplateProcessing":
        for special in processor.get("special_tokens", {}).values():
            special["ids"] = [renumber[int(i)] for i in special["ids"]]
    elif processor.get("type") in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            processor[key] = [processor[key][0], renumber[int(processor[key][1])]]
    elif processor.get("type") not in ("ByteLevel",):
        raise ExportError(f"the embedder's tokenizer has a {processor.get('type')} post-processor, which the trim "
                          "does not renumber: export with --embedder-vocab full")
    return processor


def seen_token_ids(tokenizer: Any, texts: Sequence[str], batch: int = 512) -> set[int]:
    """Every id a `tokenizers.Tokenizer` produces on `texts`."""
    return {i for start in range(0, len(texts), batch)
            for encoding in tokenizer.encode_batch(list(texts[start:start + batch])) for i in encoding.ids}


def check_same_tokens(original: Any, trimmed: Any, vocab: TrimmedVocab, texts: Sequence[str]) -> None:
    """The trimmed tokenizer must give the original tokens, renumbered, on every text it was trimmed on."""
    for start in range(0, len(texts), 512):
        batch = list(texts[start:start + 512])
        for text, before, after in zip(batch, original.encode_batch(batch), trimmed.encode_batch(batch), strict=True):
            if vocab.old_ids[after.ids].tolist() != before.ids:
                raise ExportError(f"the trimmed vocabulary tokenises {text[:40]!r} differently from the original; "
                                  "export with --embedder-vocab full")


def trim_token_table(graph_in: Path, graph_out: Path, old_ids: np.ndarray) -> int:
    """Write `graph_in` with only the `old_ids` rows of the table its `input_ids` Gather reads (fp32 or int8 with a
    per-tensor scale: rows are sliced, nothing is requantised); returns the rows it had."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(graph_in))
    initialisers = {init.name: init for init in graph.graph.initializer}
    gathers = [n for n in graph.graph.node if n.op_type == "Gather" and len(n.input) == 2
               and n.input[1] == "input_ids" and n.input[0] in initialisers]
    if len(gathers) != 1:
        raise ExportError(f"{graph_in.name}: expected one token-table Gather on input_ids, found {len(gathers)}")
    if any("input_ids" in n.input and n.op_type not in SHAPE_ONLY for n in graph.graph.node if n is not gathers[0]):
        raise ExportError(f"{graph_in.name}: input_ids feeds more than the token table; the ids cannot be renumbered")
    table_init = initialisers[gathers[0].input[0]]
    table = numpy_helper.to_array(table_init)
    if table.ndim != 2 or int(old_ids.max()) >= table.shape[0]:
        raise ExportError(f"{graph_in.name}: the token table {table.shape} does not match the tokenizer")
    table_init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(table[old_ids]), table_init.name))
    onnx.save(graph, str(graph_out))
    return int(table.shape[0])
