"""Chinese tokenizer for BM25: jieba words (search mode, with the domain's user dictionary) plus character
bigrams for what jieba does not know, so a statute name or charge missing from the dictionary still matches."""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORDLIKE = re.compile(r"\w", re.UNICODE)


def _is_cjk(token: str) -> bool:
    return all(_CJK.match(ch) for ch in token)


def char_bigrams(text: str) -> list[str]:
    """'刑法规定' -> ['刑法', '法规', '规定']; a single character stays itself."""
    if len(text) < 2:
        return [text] if text else []
    return [text[i : i + 2] for i in range(len(text) - 1)]


class JiebaTokenizer:
    """`tokenize(text) -> list[str]`. Each instance owns its jieba dictionary: user words never leak globally."""

    def __init__(self, user_dict: Path | None = None) -> None:
        self.user_dict = user_dict if user_dict is not None and user_dict.is_file() else None
        self._jieba: Any = None

    def load(self) -> JiebaTokenizer:
        if self._jieba is not None:
            return self
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        if self.user_dict is not None:
            tokenizer.load_userdict(str(self.user_dict))
            log.info("jieba user dictionary: %s", self.user_dict)
        self._jieba = tokenizer
        return self

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased words and bigrams; punctuation and whitespace dropped."""
        if self._jieba is None:
            self.load()
        text = unicodedata.normalize("NFKC", text).lower()
        tokens: list[str] = []
        run: list[str] = []  # consecutive single CJK characters: jieba found no word there
        for word in self._jieba.cut_for_search(text, HMM=True):
            if len(word) == 1 and _is_cjk(word):
                run.append(word)
                continue
            tokens.extend(self._flush(run))
            run = []
            if _WORDLIKE.search(word):
                tokens.extend(self._word_tokens(word.strip()))
        tokens.extend(self._flush(run))
        return tokens

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]

    def _word_tokens(self, word: str) -> list[str]:
        known = self._jieba.FREQ.get(word, 0) > 0
        if known or not _is_cjk(word) or len(word) < 3:
            return [word]
        return [word, *char_bigrams(word)]  # an unknown (HMM-found) word: also match its parts

    @staticmethod
    def _flush(run: list[str]) -> list[str]:
        if not run:
            return []
        joined = "".join(run)
        return [*run, *char_bigrams(joined)] if len(run) > 1 else run
