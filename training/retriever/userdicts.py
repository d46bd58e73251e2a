"""Build the jieba user dictionaries `domains/<d>/userdict.txt` from the shipped data (reproducible).

    python -m training.retriever.userdicts            # writes all three domains
    python -m training.retriever.userdicts --check    # exits 1 if a shipped file differs from what would be built

What goes in (one `word freq` line each, sorted):
- every domain: the names of the statutes in its corpus, with and without the 中华人民共和国 prefix;
- legal: the CAIL2018 charges (the label vocabulary of the CAIL eval file), each also with 罪 and split at 、;
- medical: disease and drug names mined from the Huatuo answer corpus (jieba tokens, or a token + a suffix token,
  ending in 炎 / 病 / 症 / 癌 / 瘤 / 胶囊 / 颗粒 / 片 / 丸 / 霉素 / 沙星 …, seen at least 3 times), minus a stop list;
- finance: the event types and argument names of the FinCUGE FinQA questions (train split only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from domains import DOMAINS_DIR

log = logging.getLogger(__name__)

FREQ = 2000  # high enough that jieba keeps these words whole
PRC = "中华人民共和国"
MED_SUFFIXES = ("炎", "病", "症", "癌", "瘤", "综合征", "胶囊", "颗粒", "口服液", "注射液", "片", "软膏", "乳膏", "丸",
                "霉素", "沙星", "西林", "他汀")
STOPWORDS = Path(__file__).resolve().parents[1] / "configs" / "userdict_stopwords.txt"
_HAN = re.compile(r"[\u4e00-\u9fff]+")
_FINQA_QUESTION = re.compile(r"(.+?)事件对应的(.+?)(?:是什么|有哪些|是多少|是谁)")


def _records(relative: str) -> Iterator[dict[str, Any]]:
    with gzip.open(DOMAINS_DIR / relative, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def statute_names(relatives: Iterable[str]) -> set[str]:
    names = {r["law_name"] for rel in relatives for r in _records(rel) if r.get("law_name")}
    return names | {n.removeprefix(PRC) for n in names if n.startswith(PRC) and len(n) > len(PRC) + 1}


def cail_charges() -> set[str]:
    words: set[str] = set()
    for record in _records("legal/data/eval/cail2018_lawbench_fact2article.public.jsonl.gz"):
        for charge in record.get("accusation") or []:
            parts = [charge, *charge.split("、")] if "、" in charge else [charge]
            words |= {p for p in parts if len(p) >= 2} | {f"{charge}罪"}
    return words


def medical_terms(min_count: int = 3) -> set[str]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    stop = {w.strip() for w in STOPWORDS.read_text(encoding="utf-8").splitlines() if w.strip() and w[0] != "#"}
    counts: Counter[str] = Counter()
    for record in _records("medical/data/corpus/huatuo26m_test_answers.jsonl.gz"):
        tokens = list(jieba.cut(record["text"]))
        for prev, token in zip(["", *tokens[:-1]], tokens, strict=True):
            if len(token) >= 2 and token.endswith(MED_SUFFIXES) and _HAN.fullmatch(token):
                counts[token] += 1
            elif token in MED_SUFFIXES and 1 <= len(prev) <= 4 and _HAN.fullmatch(prev):
                counts[prev + token] += 1
    return {w for w, n in counts.items() if n >= min_count and w not in stop and w not in MED_SUFFIXES}


def finance_terms(min_count: int = 10, min_left_chars: int = 3) -> set[str]:
    """Event types end the subject phrase of a FinQA question (长实集团企业收购 -> 企业收购): keep endings seen
    often and preceded by several different characters (so 业收购, always after 企, is a fragment)."""
    from eval.splits import split_of

    left: dict[str, Counter[str]] = {}
    words: set[str] = set()
    for record in _records("finance/data/eval/fincuge_finqa.public.jsonl.gz"):
        match = _FINQA_QUESTION.search(record.get("question", ""))
        if split_of(str(record.get("id"))) == "train" and match:
            phrase = match.group(1)
            for n in range(2, min(4, len(phrase) - 1) + 1):
                left.setdefault(phrase[-n:], Counter())[phrase[-n - 1]] += 1
            words |= {match.group(2)} if _HAN.fullmatch(match.group(2)) else set()
    events = {w for w, c in left.items() if c.total() >= min_count and len(c) >= min_left_chars and _HAN.fullmatch(w)}
    return words | events


def build(domain: str) -> list[str]:
    match domain:
        case "legal":
            words = statute_names(["legal/data/corpus/statutes_all.jsonl.gz"]) | cail_charges()
        case "medical":
            words = statute_names(["medical/data/corpus/medical_statutes.jsonl.gz"]) | medical_terms()
        case "finance":
            words = statute_names(["finance/data/corpus/finance_statutes.jsonl.gz"]) | finance_terms()
        case _:
            raise ValueError(f"no user dictionary recipe for domain {domain!r}")
    return [f"{w} {FREQ}" for w in sorted(w for w in words if " " not in w)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", default="legal,medical,finance")
    parser.add_argument("--check", action="store_true", help="compare with the shipped files instead of writing")
    args = parser.parse_args(argv)
    stale = 0
    for domain in args.domains.split(","):
        text = "\n".join(build(domain)) + "\n"
        path = DOMAINS_DIR / domain / "userdict.txt"
        if args.check:
            stale += path.read_text(encoding="utf-8") != text if path.is_file() else 1
        else:
            path.write_text(text, encoding="utf-8")
            log.warning("wrote %s (%d words)", path, text.count("\n"))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
