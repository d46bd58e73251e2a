"""A scripted tiny GGUF (tests/tiny_gguf.py) for the llama.cpp tests of this folder: a real llama.cpp model whose
greedy reply to any chat is SCRIPT."""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPT = "故意杀人的，处死刑或者十年以上有期徒刑[1]。"


@pytest.fixture(scope="session")
def scripted_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("llama_cpp", reason="needs the llama.cpp wheel: make llama-cpp-wheel")
    pytest.importorskip("gguf")
    from tiny_gguf import write_scripted_gguf
    from tiny_models import build_tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-gguf")
    build_tiny_tokenizer(folder)
    return write_scripted_gguf(folder, folder / "model.gguf", SCRIPT)
