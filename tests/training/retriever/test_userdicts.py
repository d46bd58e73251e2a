"""The shipped jieba user dictionaries are what the recipe builds from the shipped data."""

from __future__ import annotations

from domains import DOMAINS_DIR
from training.retriever.userdicts import build, main


def test_legal_userdict_is_reproducible_and_has_charges_and_statutes() -> None:
    assert main(["--domains", "legal,finance", "--check"]) == 0
    words = {line.split()[0] for line in (DOMAINS_DIR / "legal" / "userdict.txt").read_text("utf-8").splitlines()}
    assert {"盗窃", "盗窃罪", "中华人民共和国刑法", "刑法"} <= words
    assert sum(w.endswith("罪") for w in words) >= 180  # the CAIL charges of the public file
    assert all(len(line.split()) == 2 for line in build("legal"))
