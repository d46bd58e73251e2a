"""RAGAS on an answer run: the rows go to `eval/ragas_judge.py` in its own venv (`make ragas-env`), judged by an
OpenAI-compatible endpoint, and the scores come back into the rows and the summary.

`--judge URL` names a running endpoint; `--judge local` starts one here on 127.0.0.1: llama.cpp's server
(`python -m llama_cpp.server`, the llama-cpp-python wheel `make run` builds) over the largest generator GGUF in the
model cache (Qwen2.5-Coder-1.5B when fetched, else the 0.5B), stopped when the scoring ends. Answer relevancy
needs embeddings: the domain's own embedder is served on 127.0.0.1 for it (eval/embedding_server.py).
Abstentions are not sent to the judge (RAGAS scores a correct refusal 0 or NaN): they are counted apart. Judge
failures are counted per metric beside its mean, never averaged away.

The judge costs minutes an answer on a CPU (the 1.5B: ~11 requests, ~6,000 prompt tokens and ~1,200 generated an
answer; 2 legal answers took 408 s with one decode thread, 354 s with both cores and a prompt-state cache, on 2
cores), so the local server decodes on every core the process may use. It runs without llama-cpp-python's
`--cache`: each saved state copies the logits of every prompt token (~0.6 MB a token at Qwen's 152k vocabulary) and
the cache's size limit does not count them; the server reached 21 GB and was killed. Scores are saved as they come
(`work/judge-out.jsonl`); running the same command again judges only the rows not yet scored (eval/ragas_judge.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from core.errors import ConfigError, MissingDependency
from models.registry import gguf_file, is_fetched

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
RAGAS_PYTHON = REPO / ".venv-ragas" / "bin" / "python"
JUDGE_SCRIPT = Path(__file__).resolve().parent / "ragas_judge.py"
LOCAL_JUDGES = ("qwen2.5-coder-1.5b-instruct-gguf", "qwen2.5-coder-0.5b-instruct-gguf")  # largest first
STARTUP_TIMEOUT_S = 180.0
JUDGE_CACHE_MIB = 4096  # llama-server's prompt cache: KV states only, ~28 KB a token on the 1.5B
# rows judged (and saved) per step: a CPU judge takes 1-5 minutes a row, so a stop loses at most the row in progress
# (8, ragas_judge.py's default for a fast endpoint, lost up to 35 minutes on a 2-core AVX2 CPU)
JUDGE_CHUNK_ROWS = 1


def judge_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judge's input: answerable, retrieval-backed rows (a closed-book answer has no contexts to judge)."""
    return [{"id": r["id"], "question": r["question"], "answer": r["answer"], "contexts": r.get("contexts") or [],
             "reference": r["reference"] if r["kind"] == "reference" else None,
             "abstained": bool(r["abstained"])}
            for r in rows if r["kind"] != "unanswerable"]


def local_judge_model() -> str:
    for name in LOCAL_JUDGES:
        if is_fetched(name):
            return gguf_file(name)
    raise ConfigError(f"--judge local needs a generator GGUF: dossier models fetch {LOCAL_JUDGES[0]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def server_argv(model: str, port: int, threads: int, n_ctx: int) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of the judge server: llama.cpp's own `llama-server` where one is built (`make
    judge-server`, or `$DOSSIER_JUDGE_SERVER`), with its RAM prompt cache, so the instructions and examples every
    RAGAS prompt of a metric starts with are read once, not once a request; else llama-cpp-python's server, without
    its cache (which copies every prompt token's logits: see the module doc). One slot: on 2 cores the 1.5B decodes
    32 tokens/s alone and 37 in a batch of 4 (llama-batched-bench), so concurrent requests would buy nothing."""
    from generation.llama_server_build import server_binary

    binary = server_binary()
    if binary is None:
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1", "--port", str(port),
                "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", str(n_ctx),
                "--model_alias", "judge"]
        return argv, dict(os.environ)
    argv = [str(binary), "--model", model, "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads),
            "--threads-batch", str(threads), "--ctx-size", str(n_ctx), "--alias", "judge", "--parallel", "1",
            "--cache-ram", str(JUDGE_CACHE_MIB), "--no-webui"]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(binary.parent),
                                                                          os.environ.get("LD_LIBRARY_PATH")]))}
    return argv, env


@contextmanager
def local_judge(threads: int | None = None, n_ctx: int = 8192) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server over the largest local generator, on 127.0.0.1; yields its base URL.
    `threads` (decode and prompt): default every usable core, since the judge runs after the answers, alone."""
    import httpx

    from generation.llama_cpp_build import select_build

    select_build()  # the server process inherits the choice ($LLAMA_CPP_LIB_PATH)
    try:
        import llama_cpp  # noqa: F401 - only to fail early with the fix
    except ImportError as err:
        raise MissingDependency("llama-cpp-python", extra="edge", how="make llama-cpp-wheel") from err
    port = _free_port()
    argv, env = server_argv(local_judge_model(), port, threads or usable_cores(), n_ctx)
    with tempfile.TemporaryFile() as server_log:
        proc = subprocess.Popen(argv, stdout=server_log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    server_log.seek(0)
                    raise ConfigError(f"the judge server exited: {server_log.read()[-800:].decode(errors='replace')}")
                try:
                    if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ConfigError(f"the judge server did not come up in {STARTUP_TIMEOUT_S:.0f} s")
                time.sleep(0.5)
            log.info("local judge %s (%s) on %s", argv[argv.index("--model") + 1], Path(argv[0]).name, url)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_judge(rows: Sequence[dict[str, Any]], work: Path, llm_url: str, embeddings_url: str | None,
              timeout_s: int = 900, judge_id: str = "") -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Score `rows` with the ragas venv; returns (scores by row id, the judge's summary). Rows already scored in
    `work` by the same judge (`judge_id`) on the same texts are kept, not judged again."""
    if not RAGAS_PYTHON.is_file():
        raise ConfigError(f"RAGAS runs in its own venv, which is missing ({RAGAS_PYTHON}): make ragas-env")
    work.mkdir(parents=True, exist_ok=True)
    inputs, outputs = work / "judge-in.jsonl", work / "judge-out.jsonl"
    inputs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in judge_rows(rows)), encoding="utf-8")
    argv = [str(RAGAS_PYTHON), str(JUDGE_SCRIPT), "--rows", str(inputs), "--out", str(outputs), "--llm-url", llm_url,
            "--timeout", str(timeout_s), "--judge-id", judge_id, "--chunk", str(JUDGE_CHUNK_ROWS)]
    if embeddings_url:
        argv += ["--embeddings-url", embeddings_url]
    env = {**os.environ, "RAGAS_DO_NOT_TRACK": "true", "XDG_DATA_HOME": str(work / "xdg")}
    # stdout carries only the summary line; the judge's progress and log go straight to the user's stderr
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if done.returncode != 0:
        raise ConfigError(f"the RAGAS judge failed (exit {done.returncode}); its log is above")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    scores = {row["id"]: row for row in map(json.loads, outputs.read_text(encoding="utf-8").splitlines())}
    return scores, summary


def judge_run(rows: list[dict[str, Any]], work: Path, judge: str, embedder: Any | None,
              timeout_s: int = 900) -> dict[str, Any]:
    """Score the rows in place (`row["ragas"]`) and return {"name", "failures", "means", "skipped"}."""
    from eval.embedding_server import EmbeddingServer

    name = judge_name(judge)
    with ExitStack() as stack:
        llm_url = stack.enter_context(local_judge()) if judge == "local" else judge
        embeddings_url = stack.enter_context(EmbeddingServer(embedder)).base_url if embedder is not None else None
        scores, summary = run_judge(rows, work, llm_url, embeddings_url, timeout_s=timeout_s, judge_id=name)
    for row in rows:
        if row["id"] in scores:
            row["ragas"] = {k: v for k, v in scores[row["id"]].items() if k not in ("id", "key")}
    return {"name": name, "failures": summary.get("failures", {}), "means": summary.get("means", {}),
            "scored": summary.get("scored", 0), "skipped_abstained": summary.get("skipped", 0),
            "reused": summary.get("reused", 0), "seconds": summary.get("seconds")}


def judge_name(judge: str) -> str:
    """`local:<model dir>` for the local judge (`@llama-server` when llama.cpp's own server runs it), else the URL:
    part of every score's key. The two servers read the same GGUF greedily yet do not give the same verdicts (4
    finance answers: context precision 0.25 vs 0.00), so their scores are never mixed in one run."""
    if judge != "local":
        return judge
    from generation.llama_server_build import server_binary

    name = f"local:{Path(local_judge_model()).parent.name}"
    return f"{name}@llama-server" if server_binary() is not None else name
