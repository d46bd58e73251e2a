"""Chinese numerals as written in statutes and questions: "一千零五十七" (an article number), "十五" (days), "两"."""

from __future__ import annotations

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
             "九": 9}
CN_UNITS = {"十": 10, "百": 100, "千": 1000}
CN_NUMERAL_CHARS = "".join(CN_DIGITS) + "".join(CN_UNITS)


def chinese_numeral(text: str) -> int:
    """'十' -> 10, '十五' -> 15, '一百零五' -> 105, '一千零五十七' -> 1057 (under ten thousand; other characters are
    skipped, so callers match the numeral first). A bare 十 is ten: '十四' -> 14."""
    total, digit = 0, 0
    for char in text:
        if char in CN_DIGITS:
            digit = CN_DIGITS[char]
        elif char in CN_UNITS:
            total += (digit or 1) * CN_UNITS[char]
            digit = 0
    return total + digit
