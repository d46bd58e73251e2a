"""Articles a question names ("民法典第188条", "《劳动合同法》第四十七条的内容是什么？"): found by the chunks' metadata
and put first, ahead of what dense and BM25 rank.

Neither first stage is good at this. An embedding places "农民专业合作社法第三十三条" near every article of that law
about the same topic, and BM25 sees "第三十三条" as one rare token that hundreds of laws share. On the product path
(the full legal corpus, no filter) the hybrid retriever found the named article in the top 5 for 47 % of LawBench's
article-recitation questions. The metadata answers exactly: a law name (or its name without "中华人民共和国") and an
article number (Chinese or Arabic numerals, "之一" for inserted articles) name one chunk.

A law that exists in several versions resolves to the one in force first (现行有效, then 已被修改, then 历史版本,
then 已废止; the newest version date within each), so a superseded text never answers "what does article N say".
A question that names an article but no law, or a law but no article, looks nothing up.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.numerals import CN_NUMERAL_CHARS, chinese_numeral

log = logging.getLogger(__name__)

LAW_PREFIX = "中华人民共和国"
STATUS_ORDER = {"现行有效": 0, "已被修改": 1, "历史版本": 2, "已废止": 3}  # which version of a law answers first
MIN_ALIAS_CHARS = 2
ARTICLE_REF = re.compile(rf"第\s*([0-9]+|[{CN_NUMERAL_CHARS}]+)\s*条(?:\s*之\s*([{CN_NUMERAL_CHARS}]+))?")


def article_number(text: str) -> int:
    """"188" -> 188, "一千零五十七" -> 1057 (ARTICLE_REF matched only numerals)."""
    return int(text) if text.isdigit() else chinese_numeral(text)


@dataclass(frozen=True, slots=True)
class ArticleRef:
    """An article a question names: where the law's name stands, which law ids it may mean (best version first)."""

    law_ids: tuple[str, ...]
    number: int
    sub: int  # 0, or N of "之N"


def _aliases(law_name: str) -> set[str]:
    """The law's name with and without the state prefix, NFKC-folded like the question ("（十一）" -> "(十一)")."""
    law_name = unicodedata.normalize("NFKC", law_name)
    names = {law_name, law_name.removeprefix(LAW_PREFIX)}
    return {n for n in names if len(n) >= MIN_ALIAS_CHARS}


class ArticleCatalogue:
    """law alias -> law ids (best version first) and (law id, article number, sub) -> index key."""

    def __init__(self, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        versions: dict[str, dict[str, tuple[int, str]]] = {}  # alias -> law id -> (status rank, -date)
        self.keys: dict[tuple[str, int, int], int] = {}
        for key, meta in rows:
            law_id, name, number = meta.get("law_id"), meta.get("law_name"), meta.get("article_num")
            if not law_id or not name or not isinstance(number, int):
                continue
            self.keys.setdefault((str(law_id), number, int(meta.get("article_sub") or 0)), int(key))
            rank = (STATUS_ORDER.get(str(meta.get("status")), len(STATUS_ORDER)), str(meta.get("version_date", "")))
            for alias in _aliases(str(name)):
                versions.setdefault(alias, {})[str(law_id)] = rank
        self.laws = {alias: tuple(sorted(ids, key=lambda i: (ids[i][0], _negated(ids[i][1]))))
                     for alias, ids in versions.items()}
        # longest first, so that "刑法修正案（十一）" wins over "刑法" where both stand at one place
        self._by_length = sorted(self.laws, key=len, reverse=True)

    def __len__(self) -> int:
        return len(self.keys)

    def references(self, question: str) -> list[ArticleRef]:
        """The articles `question` names, each tied to the nearest law name before it (or the only one named)."""
        text = unicodedata.normalize("NFKC", question)
        mentions = self._law_mentions(text)
        if not mentions:
            return []
        refs: list[ArticleRef] = []
        for match in ARTICLE_REF.finditer(text):
            number = article_number(match.group(1))
            sub = article_number(match.group(2)) if match.group(2) else 0
            if not number:
                continue
            before = [m for m in mentions if m[0] < match.start()]
            owner = before[-1] if before else (mentions[0] if len(mentions) == 1 else None)
            if owner is not None:
                refs.append(ArticleRef(self.laws[owner[1]], number, sub))
        return refs

    def lookup(self, question: str) -> list[int]:
        """Index keys of the articles `question` names, in the order it names them (each law's best version that
        has the article)."""
        keys: list[int] = []
        for ref in self.references(question):
            for law_id in ref.law_ids:
                key = self.keys.get((law_id, ref.number, ref.sub))
                if key is not None:
                    if key not in keys:
                        keys.append(key)
                    break
        return keys

    def _law_mentions(self, text: str) -> list[tuple[int, str]]:
        """(start, alias) of the law names in `text`, longest first where two overlap, in reading order."""
        taken = [False] * len(text)
        found: list[tuple[int, str]] = []
        for alias in self._by_length:
            start = text.find(alias)
            while start >= 0:
                end = start + len(alias)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * len(alias)
                    found.append((start, alias))
                start = text.find(alias, end)
        return sorted(found)


def _negated(date: str) -> tuple[int, ...]:
    """Sorts ISO dates newest first."""
    return tuple(-ord(c) for c in date)
