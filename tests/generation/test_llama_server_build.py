"""generation/llama_server_build.py: which `llama-server` the RAGAS judge runs, and the real server where one is built.

The choice is read from build folders laid out as `make judge-server` writes them; a binary compiled for flags the
CPU lacks must never be chosen (it would die of SIGILL, not with an error). The last test starts the built server
the way `dossier eval answers --judge local` does (eval/answer_judge.py's argv) over the 0.5B GGUF and asks it for
JSON, as the RAGAS prompts do; it skips where `make judge-server` has not run (CI does not build it).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from model_servers import ModelServer, free_port

from core.errors import ConfigError
from eval.answer_judge import server_argv
from generation.llama_cpp_build import AVX512_FLAGS
from generation.llama_server_build import PORTABLE_FLAGS, SERVER_ENV, build_flavour, server_binary
from models.registry import gguf_file, is_fetched

JUDGE_GGUF = "qwen2.5-coder-0.5b-instruct-gguf"


def fake_build(root: Path, name: str, needs: frozenset[str]) -> Path:
    binary = root / name / "bin" / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / name / "build.json").write_text(json.dumps({"version": "0", "needs": sorted(needs)}))
    return binary


def test_build_chosen_only_where_the_cpu_has_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    avx512 = fake_build(tmp_path, "avx512", AVX512_FLAGS | PORTABLE_FLAGS)
    assert server_binary(tmp_path, flags=PORTABLE_FLAGS) is None  # an AVX2-only CPU: no build it can run
    assert server_binary(tmp_path, flags=AVX512_FLAGS | PORTABLE_FLAGS) == avx512
    portable = fake_build(tmp_path, "portable", PORTABLE_FLAGS)
    assert server_binary(tmp_path, flags=PORTABLE_FLAGS) == portable
    (tmp_path / "avx512" / "build.json").write_text("{not json")  # unreadable: skipped, not fatal
    assert server_binary(tmp_path, flags=AVX512_FLAGS | PORTABLE_FLAGS) == portable
    assert server_binary(tmp_path / "none", flags=PORTABLE_FLAGS) is None


def test_named_server_must_be_an_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="make judge-server"):
        server_binary(tmp_path)
    named = fake_build(tmp_path, "mine", frozenset())
    monkeypatch.setenv(SERVER_ENV, str(named))
    assert server_binary(tmp_path, flags=frozenset()) == named


def test_flavour_follows_the_cpu() -> None:
    assert build_flavour(AVX512_FLAGS | PORTABLE_FLAGS)[0] == "avx512"
    assert build_flavour(PORTABLE_FLAGS)[0] == "portable"
    with pytest.raises(ConfigError, match="avx2"):
        build_flavour(frozenset({"avx"}))


def test_judge_falls_back_to_llama_cpp_python_without_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path))
    argv, _ = server_argv("m.gguf", 8080, 2, 8192)
    assert argv[1:3] == ["-m", "llama_cpp.server"] and argv[argv.index("--n_threads") + 1] == "2"


def test_built_server_answers_in_json_mode() -> None:
    if server_binary() is None or not is_fetched(JUDGE_GGUF):
        pytest.skip(f"needs `make judge-server` and `dossier models fetch {JUDGE_GGUF}`")
    port = free_port()
    argv, env = server_argv(gguf_file(JUDGE_GGUF), port, threads=1, n_ctx=2048)
    assert Path(argv[0]).name == "llama-server" and "--cache-ram" in argv
    with ModelServer(argv, port, env=env, startup_timeout_s=120) as server:
        reply = httpx.post(f"{server.base_url}/chat/completions", timeout=120, json={
            "model": "judge", "temperature": 0, "max_tokens": 24, "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": '用JSON回答：{"answer": 1+1 等于几}'}]}).json()
    json.loads(reply["choices"][0]["message"]["content"])  # the grammar held: the reply parses
