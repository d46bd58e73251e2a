"""eval/ragas_judge.py run as it is meant to run: `.venv-ragas/bin/python eval/ragas_judge.py` in a subprocess.

The fast tests need no server: an abstained row is skipped, the non-LLM metrics score Chinese by character, a
judge URL nobody listens on comes back as counted failures with exit status 0 (the documented choice), not a
crash, and a second run over the same output keeps the rows already judged and judges only the rest. The slow
test judges with a real llama.cpp server (`python -m llama_cpp.server`, 1 thread) over the fetched Qwen2.5-Coder
0.5B GGUF. All skip without `make ragas-env`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_servers import free_port, llama_cpp_server

from models.registry import gguf_file, is_fetched

REPO = Path(__file__).resolve().parents[2]
RAGAS_PY = REPO / ".venv-ragas" / "bin" / "python"
SCRIPT = REPO / "eval" / "ragas_judge.py"
JUDGE_GGUF = "qwen2.5-coder-0.5b-instruct-gguf"

needs_ragas = pytest.mark.skipif(not RAGAS_PY.exists(), reason="needs the ragas venv: `make ragas-env`")
needs_judge = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or not is_fetched(JUDGE_GGUF),
    reason=f"needs `make ragas-env`, `make llama-cpp-wheel` and `dossier models fetch {JUDGE_GGUF}`",
)

ARTICLE_264 = ("中华人民共和国刑法 第二百六十四条：盗窃公私财物，数额较大的，或者多次盗窃、入户盗窃、"
               "携带凶器盗窃、扒窃的，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金；数额巨大或者有其他"
               "严重情节的，处三年以上十年以下有期徒刑，并处罚金；数额特别巨大或者有其他特别严重情节的，"
               "处十年以上有期徒刑或者无期徒刑，并处罚金或者没收财产。")
REFERENCE = "盗窃公私财物，数额较大的，处三年以下有期徒刑、拘役或者管制，并处或者单处罚金。"
ANSWERED = {"id": "theft", "question": "盗窃罪数额较大的怎么处罚？", "answer": REFERENCE[:-1] + "[1]。",
            "contexts": [ARTICLE_264], "reference": REFERENCE, "abstained": False}
NO_REFERENCE = {**ANSWERED, "id": "theft-no-ref", "reference": None}
ABSTAINED = {"id": "weather", "question": "今天天气怎么样？", "answer": "资料中没有找到相关内容。", "contexts": [],
             "reference": None, "abstained": True}
LLM_METRICS = ("faithfulness", "llm_context_precision_with_reference", "context_recall")
NGRAM_METRICS = ("bleu_score", "rouge_score", "non_llm_string_similarity")


def judge(tmp_path: Path, rows: list[dict], llm_url: str, *extra: str, timeout: float = 120) -> tuple[
        subprocess.CompletedProcess, list[dict]]:
    rows_file, out_file = tmp_path / "rows.jsonl", tmp_path / "scores.jsonl"
    rows_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    env = {**os.environ, "RAGAS_DO_NOT_TRACK": "true", "XDG_DATA_HOME": str(tmp_path / "xdg"), "OPENAI_API_KEY": "x"}
    done = subprocess.run([str(RAGAS_PY), str(SCRIPT), "--rows", str(rows_file), "--out", str(out_file),
                           "--llm-url", llm_url, *extra], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
    written = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()] \
        if out_file.exists() else []
    return done, written


def only_summary(stdout: str) -> dict:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout  # nothing but the summary on stdout
    return json.loads(lines[0])


@needs_ragas
def test_unreachable_judge_is_counted_and_abstained_rows_are_skipped(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    done, written = judge(tmp_path, [ANSWERED, ABSTAINED], dead, "--embeddings-url", dead)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = only_summary(done.stdout)
    assert (summary["n"], summary["scored"], summary["skipped"]) == (2, 1, 1)
    assert written[1] == {"id": "weather", "skipped": "abstained"}
    row = written[0]
    for name in (*LLM_METRICS, "answer_relevancy"):
        assert row[name] is None and row["failures"][name].endswith("ConnectionError")
        assert summary["failures"][name] == 1 and summary["means"][name] is None
    for name in NGRAM_METRICS:
        assert 0.5 < row[name] < 1.0 and name not in row["failures"]  # close but not equal: scored by character
        assert summary["means"][name] == pytest.approx(row[name]) and summary["failures"][name] == 0
    assert "NaN" not in (tmp_path / "scores.jsonl").read_text(encoding="utf-8")


@needs_ragas
def test_chinese_ngrams_are_scored_by_character(tmp_path: Path) -> None:
    # One clause of the reference left out: a whole-sentence token would score 0, a deleted Han character 0 or 1.
    short = {**ANSWERED, "answer": "盗窃公私财物，数额较大的，处三年以下有期徒刑。"}
    same = {**ANSWERED, "id": "same", "answer": ANSWERED["reference"]}
    done, written = judge(tmp_path, [short, same], f"http://127.0.0.1:{free_port()}/v1")
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("bleu_score", "rouge_score"):
        assert 0.2 < written[0][name] < 0.9
        assert written[1][name] == pytest.approx(1.0)


def load_script() -> object:
    spec = importlib.util.spec_from_file_location("ragas_judge_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # the helpers used here import nothing beyond the standard library
    return module


@needs_ragas
def test_a_second_run_keeps_judged_rows_and_judges_the_rest(tmp_path: Path) -> None:
    script = load_script()
    prompts = hashlib.sha256(script.DEFAULT_PROMPTS.read_bytes()).hexdigest()[:12]
    row = script.Row(ANSWERED["id"], ANSWERED["question"], ANSWERED["answer"], tuple(ANSWERED["contexts"]),
                     ANSWERED["reference"], False)
    kept = {"id": "theft", "key": script.row_key(row, "judge-a", prompts), "faithfulness": 0.25, "failures": {}}
    changed = {**ANSWERED, "id": "changed", "answer": "盗窃数额较大的处三年以下有期徒刑[1]。"}
    stale = {"id": "changed", "key": "not-this-answer", "faithfulness": 0.75, "failures": {}}
    unreached = {**ANSWERED, "id": "unreached"}
    unreached_row = dataclasses.replace(row, id="unreached")
    refused_before = {"id": "unreached", "key": script.row_key(unreached_row, "judge-a", prompts),
                      "faithfulness": None, "failures": {"faithfulness": "APIConnectionError"}}
    (tmp_path / "scores.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (kept, stale, refused_before)) + "{broken",
        encoding="utf-8")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    done, written = judge(tmp_path, [ANSWERED, changed, unreached, ABSTAINED], dead, "--judge-id", "judge-a",
                          "--chunk", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = only_summary(done.stdout)
    assert (summary["n"], summary["scored"], summary["skipped"], summary["reused"]) == (4, 3, 1, 1)
    assert [r["id"] for r in written] == ["theft", "changed", "unreached", "weather"]  # input order again
    assert written[0]["faithfulness"] == 0.25 and written[0]["key"] == kept["key"]  # kept, not re-judged
    for again in written[1:3]:  # a changed answer and an unreached judge are judged again (and fail again here)
        assert again["faithfulness"] is None and again["failures"]["faithfulness"].endswith("ConnectionError")
    assert summary["failures"]["faithfulness"] == 2
    assert summary["means"]["faithfulness"] == pytest.approx(0.25)
    # another judge's scores are not reused
    done, written = judge(tmp_path, [ANSWERED], dead, "--judge-id", "judge-b")
    assert only_summary(done.stdout)["reused"] == 0 and written[0]["faithfulness"] is None


@needs_ragas
def test_bad_input_exits_2(tmp_path: Path) -> None:
    done, written = judge(tmp_path, [{"id": "x", "question": "?"}], "http://127.0.0.1:9/v1")
    assert done.returncode == 2 and "missing" in done.stderr and written == []


@pytest.mark.slow
@needs_ragas
@needs_judge
def test_real_llama_cpp_judge(tmp_path: Path) -> None:
    with llama_cpp_server(gguf_file(JUDGE_GGUF), threads=1, n_ctx=4096) as server:
        done, written = judge(tmp_path, [ANSWERED, NO_REFERENCE], server.base_url, "--timeout", "600", timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = only_summary(done.stdout)
    assert (summary["n"], summary["scored"], summary["skipped"]) == (2, 2, 0)
    with_ref, without_ref = written
    assert set(LLM_METRICS + NGRAM_METRICS) <= set(with_ref) and "context_recall" not in without_ref
    llm_cells = [row[name] for row in written for name in LLM_METRICS if name in row]
    assert len(llm_cells) == 4 and any(value is not None for value in llm_cells)  # the judge really scored
    for row in written:
        for name, value in row.items():
            if name not in ("id", "key", "failures"):
                assert (value is None) == (name in row["failures"])
                assert value is None or 0.0 <= value <= 1.0
    assert sum(summary["failures"].values()) == sum(len(row["failures"]) for row in written)
