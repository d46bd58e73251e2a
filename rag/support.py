"""Does a cited passage support the sentence that cites it? The one check serving, training and evaluation share.

A sentence is judged on its own content: the passage title it repeats ("中华人民共和国刑法 第二百六十四条") is cut
out first, so a sentence that only names the article supports nothing, and an invented sentence cannot pass by
repeating a real title. Then three things must hold:

1. overlap: at least `SUPPORT_MIN` of the content's character bigrams occur in the passage text (paraphrase
   stays above it; an unrelated sentence does not);
2. facts: every penalty (死刑, 有期徒刑, 拘役, 罚金, ...), every quantity with its unit (五年, 3个月, 一万元, 两倍,
   66亿元, 35370.00万股, 以上 / 以下 kept) and every article number (第一百三十三条) the content states must occur
   in the passage — numerals compared by value, so "3年" matches "三年";
3. quotes: text in quotation marks (“”「」『』) is presented as the article's wording and must occur in it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher

from core.numerals import chinese_numeral

SUPPORT_MIN = 0.15  # share of the sentence's content bigrams found in the passage text
MIN_CONTENT_CHARS = 4  # fewer letters / digits left after the title is cut: the sentence only names the article
MIN_QUOTE_CHARS = 4  # shorter quoted text is a term, not a quotation of the wording
# a passage holds a sentence word for word when one unbroken run of it covers this share of the sentence: the miscited
# copies small models write are whole (73 of 87 in a medical base run have 80 % or more, rag/citation_repair.py)
VERBATIM_MIN = 0.8

PENALTIES = ("死刑", "无期徒刑", "有期徒刑", "拘役", "管制", "罚金", "没收财产", "剥夺政治权利", "罚款", "拘留",
             "吊销", "缓刑", "驱逐出境")
_NUMBER = r"[0-9]+(?:\.[0-9]+)?|[零〇一二两三四五六七八九十百千]+"
# money and share counts as filings write them ("66亿元", "35370.00万股", "1.2亿美元"): without them a short answer
# stating the wrong amount under a real citation passed the check (issue 13, finance); longer units first
_UNIT = r"个月|[万亿]?(?:美元|港元|元|股)|[万亿]|年|月|日|天|小时|岁|倍|人|次|%"
_PERCENT = re.compile(rf"百分之({_NUMBER})")
_THOUSANDS = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
QUANTITY = re.compile(rf"({_NUMBER})\s*({_UNIT})(以上|以下|以内)?")
ARTICLE = re.compile(r"第[零〇一二两三四五六七八九十百千0-9]+条(?:之[一二三四五六七八九十]+)?")
QUOTE = re.compile(rf"[“「『\"]([^”」』\"]{{{MIN_QUOTE_CHARS},}})[”」』\"]")


@dataclass(frozen=True, slots=True)
class SupportVerdict:
    supported: bool
    overlap: float  # share of the content's bigrams found in the passage text
    reason: str = ""  # why not, for the trace: "overlap 0.08", "not in the passage: 五年以下, 有期徒刑"


def char_bigrams(text: str) -> set[str]:
    """Bigrams of letters, digits and CJK characters (punctuation and spaces dropped): Chinese is compared by
    characters, not whitespace tokens."""
    chars = "".join(c for c in text if c.isalnum())
    return {chars[i : i + 2] for i in range(len(chars) - 1)} if len(chars) > 1 else set(chars)


def without_title(sentence: str, title: str) -> str:
    """The sentence with the passage title, and each part of it (law name, article number), cut out."""
    parts = [title.strip(), *title.split()]
    for part in sorted({p for p in parts if len(p) >= 2}, key=len, reverse=True):
        sentence = sentence.replace(part, " ")
    return sentence


def names_only_the_title(sentence: str, title: str) -> bool:
    """True for a heading line like "[1] 中华人民共和国刑法 第二百六十四条": nothing left to support."""
    return sum(c.isalnum() for c in without_title(sentence, title)) < MIN_CONTENT_CHARS


def numeral_value(text: str) -> float:
    """'3' -> 3, '十五' -> 15, '二十' -> 20, '一百零五' -> 105, '两' -> 2 (numbers under ten thousand)."""
    if text[0].isdigit():
        return float(text)
    return float(chinese_numeral(text))


def _normalised(text: str) -> str:
    """Spellings of one quantity made one: full-width forms (％, １２) by NFKC, 百分之二十 -> 二十%, 周岁 -> 岁,
    379,179,681股 -> 379179681股."""
    text = _THOUSANDS.sub("", unicodedata.normalize("NFKC", text))
    return _PERCENT.sub(lambda m: f"{m.group(1)}%", text).replace("周岁", "岁")


def facts(text: str) -> set[str]:
    """The checkable facts a text states: penalties, quantities (value, unit, bound) and article numbers."""
    text = _normalised(text)
    found = {p for p in PENALTIES if p in text}
    for number, unit, bound in QUANTITY.findall(text):
        # "三年以下" states 3年 and 3年以下: a sentence saying "三年" is held by a passage saying "三年以下", one
        # saying "三年以上" is not
        value = f"{numeral_value(number):.15g}"  # all the digits: ":g" made 379179681 and 379179682 one
        found |= {f"{value}{unit}", f"{value}{unit}{bound}"}
        if unit[0] in "万亿" and len(unit) > 1:  # a passage's "十五万元" holds a sentence's "十五万"
            found.add(f"{value}{unit[0]}")
    found |= {_article_key(a) for a in ARTICLE.findall(text)}
    return found


def _article_key(article: str) -> str:
    number = re.match(r"第(.+?)条", article)
    assert number is not None  # ARTICLE matched it
    return f"第{numeral_value(number.group(1)):g}条{article[number.end():]}"


def compact(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def verbatim_share(claim: str, passage: str) -> float:
    """Share of `claim`'s letters and digits covered by its longest unbroken run in `passage`."""
    a, b = compact(claim), compact(passage)
    if not a:
        return 0.0
    run = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return run.size / len(a)


def judge(sentence: str, title: str, passage: str) -> SupportVerdict:
    """Whether `passage` (its text; `title` is what the sentence may repeat) supports `sentence`."""
    content = without_title(sentence, title)
    grams = char_bigrams(content)
    overlap = len(grams & char_bigrams(passage)) / len(grams) if grams else 0.0
    if overlap < SUPPORT_MIN:
        return SupportVerdict(False, overlap, f"overlap {overlap:.2f} under {SUPPORT_MIN}")
    missing = sorted(facts(content) - facts(passage + " " + title))
    if missing:
        return SupportVerdict(False, overlap, f"not in the passage: {', '.join(missing)}")
    unquoted = [q for q in QUOTE.findall(content) if compact(q) not in compact(passage)]
    if unquoted:
        return SupportVerdict(False, overlap, f"quoted wording not in the passage: {unquoted[0][:40]}")
    return SupportVerdict(True, overlap)
