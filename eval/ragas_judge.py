"""RAGAS scores for Dossier's answers, judged by any OpenAI-compatible HTTP endpoint.

A standalone script: it runs under `.venv-ragas/bin/python` (`make ragas-env`), never the project venv, because
ragas 0.4.3 pins a langchain / instructor / openai set the project cannot share; so it imports nothing of Dossier.

    .venv-ragas/bin/python eval/ragas_judge.py --rows IN.jsonl --out OUT.jsonl --llm-url http://127.0.0.1:8080/v1 \
        [--llm-model NAME] [--embeddings-url URL] [--embeddings-model NAME] \
        [--prompts eval/data/ragas_prompts_zh.json] [--timeout S] [--workers N] [--max-tokens N] [--no-json-mode] \
        [--judge-id NAME] [--chunk N]

Input, one JSON row per line: {"id", "question", "answer", "contexts": [str], "reference": str | null, "abstained"}.
Output, one row per input row, in input order:
- abstained rows are not sent to ragas (it scores a correct refusal as 0 or NaN): {"id", "skipped": "abstained"};
- every other row: {"id", <metric>: float | null, ..., "failures": {<metric>: "nan" | <exception class>}}, holding
  the metrics that apply to the row: faithfulness always; answer_relevancy with --embeddings-url;
  llm_context_precision_with_reference, context_recall, bleu_score, rouge_score and non_llm_string_similarity
  when the row has a reference. A failed cell is null, never NaN, and says why under "failures".
stdout carries one line, the summary: {"n", "scored", "skipped", "reused", "means", "failures", "seconds"}; means
are over the cells that did not fail. Logs go to stderr.

Resumable: a CPU judge takes minutes an answer, so rows are judged `--chunk` at a time and each chunk's rows are
appended to --out as soon as it is scored. A scored row carries "key", a digest of the judge (--judge-id), the
prompt file and the row's question, answer, contexts and reference; a later run over the same --out keeps every row
whose key still matches and judges only the rest. A row is judged again when its key changed, or when a cell failed
because the judge could not be reached (a connection error or a timeout says nothing about the answer). When the run
ends, --out is rewritten whole, in input order.

How it calls ragas: the legacy metrics through `evaluate()`, the judge as `LangchainLLMWrapper(ChatOpenAI)` with
`bypass_n=True` (local servers may ignore `n`), embeddings as `LangchainEmbeddingsWrapper(OpenAIEmbeddings)` with
`check_embedding_ctx_length=False` (otherwise it sends tiktoken ids, not text). `evaluate()` turns a failed cell
into NaN and logs the exception class; the class is read back from that log record (`_JobFailures`).
The API key is $OPENAI_API_KEY when set ("none" otherwise: local servers ignore it).

Chinese n-gram metrics: BLEU and ROUGE-L get both texts re-spaced, one token per Han character and one per run of
letters / digits (NFKC, lower case, punctuation dropped), because sacrebleu's default tokeniser would read a
whole Chinese sentence as one token and rouge_score's would delete every Han character. ROUGE is given a
whitespace tokeniser for that reason. The string similarity (Levenshtein) compares the raw texts, by character.

An unreachable or broken judge is not a crash: its cells fail (e.g. "APIConnectionError") and are counted, the
non-LLM metrics are still scored, and the exit status is 0. Bad input (a missing field, bad JSON) exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PROMPTS = Path(__file__).resolve().parent / "data" / "ragas_prompts_zh.json"
FIELDS = ("id", "question", "answer", "contexts", "reference", "abstained")
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_HAN}]|[^\W_{_HAN}]+")  # one Han character, or a run of other letters / digits
# failure classes that say the judge was not reached, not what it thought of the answer: judged again on resume
TRANSPORT_FAILURES = ("ConnectionError", "ConnectError", "TimeoutError", "Timeout", "TimeoutException")


@dataclass(frozen=True)
class Row:
    id: str
    question: str
    answer: str
    contexts: tuple[str, ...]
    reference: str | None
    abstained: bool


def spaced(text: str) -> str:
    """'刑法第264条规定' -> '刑 法 第 264 条 规 定': the token stream the n-gram metrics compare."""
    return " ".join(_TOKEN.findall(unicodedata.normalize("NFKC", text).lower()))


def row_key(row: Row, judge_id: str, prompts_digest: str) -> str:
    """What a score depends on: the judge, its prompts and the row's texts."""
    blob = json.dumps([judge_id, prompts_digest, row.question, row.answer, list(row.contexts), row.reference],
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


def reusable(record: dict[str, Any], key: str) -> bool:
    failures = record.get("failures") or {}
    return record.get("key") == key and not any(str(why).endswith(TRANSPORT_FAILURES) for why in failures.values())


def read_done(path: Path) -> dict[str, dict[str, Any]]:
    """The scored rows an earlier run left in `path` (the last record of an id wins); unreadable lines are ignored
    (a run stopped mid-write leaves at most one)."""
    if not path.exists():
        return {}
    done: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "key" in record and "id" in record:
            done[str(record["id"])] = record
    return done


def read_rows(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        missing = [name for name in FIELDS if name not in record]
        if missing:
            raise ValueError(f"{path}:{number}: missing {', '.join(missing)} (a row needs {', '.join(FIELDS)})")
        reference = record["reference"] or None  # "" counts as no reference
        rows.append(Row(str(record["id"]), record["question"], record["answer"], tuple(record["contexts"]),
                        reference, bool(record["abstained"])))
    if len({r.id for r in rows}) != len(rows):
        raise ValueError(f"{path}: ids are not unique")
    return rows


class _JobFailures(logging.Handler):
    """ragas' Executor logs `Exception raised in Job[%s]: %s(%s)` (job index, exception class, message) for each
    failed cell it turns into NaN: keep index -> class, so that a failure says more than "nan"."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_job: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if str(record.msg).startswith("Exception raised in Job[") and isinstance(args, tuple) and len(args) >= 2:
            self.by_job[int(args[0])] = str(args[1])


def load_prompts(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    spec = json.loads(path.read_text(encoding="utf-8"))
    return spec["language"], spec["prompts"]


def apply_prompts(metrics: list[Any], language: str, prompts: dict[str, dict[str, Any]]) -> None:
    """Replace each metric's instruction and examples with the file's; the schema wrapper stays ragas' own."""
    for metric in metrics:
        current = metric.get_prompts() if hasattr(metric, "get_prompts") else {}
        for name, body in prompts.get(metric.name, {}).items():
            if name not in current:
                raise ValueError(f"{metric.name} has no prompt {name!r}; it has {sorted(current)}")
            prompt = copy.copy(current[name])  # ResponseRelevancy's default prompt object is shared (a class default)
            prompt.instruction = body["instruction"]
            prompt.examples = [(_example(prompt.input_model, e["input"]), _example(prompt.output_model, e["output"]))
                               for e in body["examples"]]
            prompt.language = language
            metric.set_prompts(**{name: prompt})


def _example(model: Any, data: dict[str, Any]) -> Any:
    if set(data) != set(model.model_fields):
        raise ValueError(f"example keys {sorted(data)} != {model.__name__} fields {sorted(model.model_fields)}")
    return model.model_validate(data)


def build_judges(args: argparse.Namespace) -> tuple[Any, Any | None]:
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper

    key = os.environ.get("OPENAI_API_KEY", "none")
    json_mode = {"response_format": {"type": "json_object"}} if args.json_mode else {}
    chat = ChatOpenAI(base_url=args.llm_url, api_key=key, model=args.llm_model, temperature=0, timeout=args.timeout,
                      max_retries=1, max_tokens=args.max_tokens, model_kwargs=json_mode)
    llm = LangchainLLMWrapper(chat, bypass_n=True)
    if not args.embeddings_url:
        return llm, None
    embedder = OpenAIEmbeddings(base_url=args.embeddings_url, api_key=key, model=args.embeddings_model,
                                check_embedding_ctx_length=False, max_retries=1)
    return llm, LangchainEmbeddingsWrapper(embedder)


def ngram_metrics() -> list[Any]:
    """BLEU and ROUGE-L over `spaced` text: sacrebleu splits on spaces only, ROUGE gets a whitespace tokeniser."""
    import functools
    import types

    from ragas.metrics import BleuScore, RougeScore
    from rouge_score import rouge_scorer, tokenizers

    class WhitespaceTokenizer(tokenizers.Tokenizer):
        def tokenize(self, text: str) -> list[str]:
            return text.split()

    rouge = RougeScore()  # rougeL, F-measure; it calls rouge_scorer.RougeScorer([type], use_stemmer=True)
    rouge.rouge_scorer = types.SimpleNamespace(
        RougeScorer=functools.partial(rouge_scorer.RougeScorer, tokenizer=WhitespaceTokenizer()))
    return [BleuScore(kwargs={"tokenize": "none"}), rouge]


def run_evaluate(rows: list[Row], metrics: list[Any], llm: Any, embeddings: Any, args: argparse.Namespace,
                 spaced_text: bool = False) -> list[dict[str, tuple[float | None, str | None]]]:
    """One `evaluate()` over rows -> per row {metric: (value, failure)}; a failed cell is (None, reason)."""
    from ragas import EvaluationDataset, SingleTurnSample, evaluate
    from ragas.run_config import RunConfig

    if not rows or not metrics:
        return [{} for _ in rows]
    text = spaced if spaced_text else (lambda s: s)
    samples = [SingleTurnSample(user_input=r.question, response=text(r.answer), retrieved_contexts=list(r.contexts),
                                reference=text(r.reference) if r.reference else None) for r in rows]
    failures = _JobFailures()
    executor_log = logging.getLogger("ragas.executor")
    executor_log.addHandler(failures)
    try:
        result = evaluate(EvaluationDataset(samples=samples), metrics=metrics, llm=llm, embeddings=embeddings,
                          raise_exceptions=False, show_progress=True,  # tqdm on stderr
                          run_config=RunConfig(timeout=args.timeout, max_workers=args.workers, max_retries=2,
                                               max_wait=5))
    finally:
        executor_log.removeHandler(failures)
    cells = []
    for i, scores in enumerate(result.scores):  # job index = row * len(metrics) + metric, as evaluate() submits
        row = {}
        # scores are keyed in metric order, some as "name(mode=...)" (RougeScore): read them by position
        for j, (metric, value) in enumerate(zip(metrics, scores.values(), strict=True)):
            if value is None or not math.isfinite(float(value)):
                row[metric.name] = (None, failures.by_job.get(i * len(metrics) + j, "nan"))
            else:
                row[metric.name] = (float(value), None)
        cells.append(row)
    return cells


def score(rows: list[Row], args: argparse.Namespace) -> list[dict[str, tuple[float | None, str | None]]]:
    """Three evaluate() runs: LLM metrics on rows with / without a reference, n-gram metrics on spaced text."""
    from ragas.metrics import (
        Faithfulness,
        LLMContextPrecisionWithReference,
        LLMContextRecall,
        NonLLMStringSimilarity,
        ResponseRelevancy,
    )

    llm, embeddings = build_judges(args)
    language, prompts = load_prompts(args.prompts)

    def llm_metrics(with_reference: bool) -> list[Any]:
        metrics: list[Any] = [Faithfulness()] + ([ResponseRelevancy()] if embeddings else [])
        if with_reference:
            metrics += [LLMContextPrecisionWithReference(), LLMContextRecall(), NonLLMStringSimilarity()]
        apply_prompts(metrics, language, prompts)
        return metrics

    with_ref = [r for r in rows if r.reference]
    without_ref = [r for r in rows if not r.reference]
    cells: dict[str, dict[str, tuple[float | None, str | None]]] = {}
    for group, metrics in ((with_ref, llm_metrics(True)), (without_ref, llm_metrics(False))):
        cells |= dict(zip([r.id for r in group], run_evaluate(group, metrics, llm, embeddings, args), strict=True))
    ngrams = run_evaluate(with_ref, ngram_metrics(), None, None, args, spaced_text=True)
    for r, row_cells in zip(with_ref, ngrams, strict=True):
        cells[r.id] |= row_cells
    return [cells[r.id] for r in rows]


def out_row(row: Row, cells: dict[str, tuple[float | None, str | None]], key: str) -> dict[str, Any]:
    record: dict[str, Any] = {"id": row.id, "key": key}
    record.update({name: value for name, (value, _) in cells.items()})
    record["failures"] = {name: why for name, (_, why) in cells.items() if why is not None}
    return record


def skipped_row(row: Row) -> dict[str, Any]:
    return {"id": row.id, "skipped": "abstained"}


def summary(records: list[dict[str, Any]], reused: int, seconds: float) -> dict:
    """Means and failure counts per metric over the scored records (skipped ones carry no metric)."""
    values: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    scored = [r for r in records if "skipped" not in r]
    for record in scored:
        for name, value in record.items():
            if name in ("id", "key", "failures"):
                continue
            values.setdefault(name, [])
            failures[name] = failures.get(name, 0) + (name in record["failures"])
            if value is not None:
                values[name].append(value)
    means = {name: (sum(v) / len(v) if v else None) for name, v in values.items()}
    return {"n": len(records), "scored": len(scored), "skipped": len(records) - len(scored), "reused": reused,
            "means": means, "failures": failures, "seconds": round(seconds, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=Path, required=True, help="input JSONL (one answer per line)")
    p.add_argument("--out", type=Path, required=True, help="output JSONL (one score row per input row)")
    p.add_argument("--llm-url", required=True, help="judge base URL, e.g. http://127.0.0.1:8080/v1")
    p.add_argument("--llm-model", default="local-gguf", help="judge model name the server answers to")
    p.add_argument("--embeddings-url", help="embeddings base URL; without it answer_relevancy is not scored")
    p.add_argument("--embeddings-model", default="local-embeddings")
    p.add_argument("--prompts", type=Path, default=DEFAULT_PROMPTS, help="prompt adaptations (JSON)")
    p.add_argument("--timeout", type=int, default=900, help="seconds per metric cell (and per HTTP request)")
    p.add_argument("--workers", type=int, default=1, help="concurrent cells; 1 suits a CPU judge")
    p.add_argument("--max-tokens", type=int, default=1024, help="judge reply cap (a small model may loop)")
    p.add_argument("--no-json-mode", dest="json_mode", action="store_false",
                   help="do not send response_format=json_object (for servers that reject it)")
    p.add_argument("--judge-id", default="",
                   help="names the judge model in each row's key, so that another judge's scores are not reused")
    p.add_argument("--chunk", type=int, default=8, help="rows judged (and saved) per step (default 8)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # eval/ holds modules named metrics.py, splits.py ...: they must not shadow a library's top-level imports
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    try:
        rows = read_rows(args.rows)
    except (ValueError, KeyError, TypeError) as error:  # json.JSONDecodeError is a ValueError
        logger.error("bad input: %s", error)
        return 2
    started = time.monotonic()
    prompts_digest = hashlib.sha256(args.prompts.read_bytes()).hexdigest()[:12]
    keys = {r.id: row_key(r, args.judge_id, prompts_digest) for r in rows if not r.abstained}
    done = {rid: rec for rid, rec in read_done(args.out).items() if rid in keys and reusable(rec, keys[rid])}
    todo = [r for r in rows if not r.abstained and r.id not in done]
    if done:
        logger.info("resuming: %d rows already judged, %d to judge", len(done), len(todo))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as out:  # what is kept, then each chunk as it is scored
        out.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in done.values())
    judged = dict(done)
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # no analytics POST to explodinggradients
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the legacy metrics warn on import
    with tempfile.TemporaryDirectory(prefix="ragas-data-") as data_home, contextlib.redirect_stdout(sys.stderr):
        os.environ["XDG_DATA_HOME"] = data_home  # ragas writes ragas/uuid.json there, not in ~/.local/share
        for start in range(0, len(todo), max(1, args.chunk)):
            chunk = todo[start:start + max(1, args.chunk)]
            records = [out_row(r, cells, keys[r.id]) for r, cells in zip(chunk, score(chunk, args), strict=True)]
            with args.out.open("a", encoding="utf-8") as out:
                out.writelines(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
                out.flush()
                os.fsync(out.fileno())
            judged |= {rec["id"]: rec for rec in records}
            elapsed = time.monotonic() - started
            logger.info("judged %d of %d rows (%.0f s a row this run)", len(judged), len(keys),
                        elapsed / (start + len(chunk)))
    final = [judged[r.id] if not r.abstained else skipped_row(r) for r in rows]
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in final), encoding="utf-8")
    partial.replace(args.out)  # input order, whole, or the appended file as it was
    result = summary(final, len(done), time.monotonic() - started)
    logger.info("%d rows, %d scored (%d reused) in %.1f s", result["n"], result["scored"], result["reused"],
                result["seconds"])
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
