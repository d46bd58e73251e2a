import codecs
import random

import pytest
from ingest_helpers import criminal_law_records

from core.errors import IngestError
from ingest.encoding import decode_text, looks_binary

ARTICLE = criminal_law_records(3)[2]["text"]  # a real article of the Criminal Law


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8"])
def test_chinese_text_decodes_from_common_encodings(encoding: str) -> None:
    text, found = decode_text(ARTICLE.encode(encoding))
    assert text == ARTICLE
    assert found in ("gb18030", "utf-8")


def test_bom_decides_the_encoding() -> None:
    assert decode_text(codecs.BOM_UTF8 + ARTICLE.encode("utf-8")) == (ARTICLE, "utf-8-sig")
    assert decode_text(ARTICLE.encode("utf-16"))[0] == ARTICLE


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"  \n\t ", "empty file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "binary"),
        (random.Random(0).randbytes(8192).replace(b"\x00", b"\x01"), "binary|undecodable"),  # no NUL byte
    ],
)
def test_bad_content_raises_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(IngestError, match=reason):
        decode_text(data)


def test_looks_binary_lets_text_through() -> None:
    assert not looks_binary(ARTICLE.encode("gbk"))
    assert looks_binary(b"abc\x00def")
