import pytest

from ingest.normalize import KEPT_FULL_WIDTH, normalize_text, normalize_title


def test_full_width_ascii_becomes_half_width() -> None:
    assert normalize_text("ＡＢＣ ｘｙｚ １２３％ ＠＃ ｅ－ｍａｉｌ／ＵＲＬ") == "ABC xyz 123% @# e-mail/URL"


def test_chinese_punctuation_stays_full_width() -> None:
    text = "第一条，本法。何？是！如下：（一）甲；「乙」、丙"
    assert normalize_text(text) == text
    assert set("！，：；？（）") == KEPT_FULL_WIDTH


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\u3000\u3000b", "a b"),  # ideographic spaces
        ("a \t\u00a0 b", "a b"),  # tab, NBSP, runs of spaces
        ("line1\r\nline2\rline3", "line1\nline2\nline3"),
        ("  padded line  \n  next  ", "padded line\nnext"),
        ("a\x00b\x07c\x1bd", "abcd"),  # control characters
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("p1\n\n\n\n\np2", "p1\n\np2"),  # blank lines collapse to one
        ("\n\n  \n", ""),
    ],
)
def test_whitespace_and_control_characters(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalisation_is_idempotent() -> None:
    raw = " ＡＢ\u3000ｃ，\r\n\n\n\x01（一）甲；\t乙。 "
    once = normalize_text(raw)
    assert normalize_text(once) == once


def test_title_is_one_line() -> None:
    assert normalize_title(" 刑法\n 第一条 ") == "刑法 第一条"
