"""Charge prediction from CAIL2018 case facts: the examples, the prompt, and a scoring that is fair to any model.

Records come from the domain's classification eval set (legal: `cail2018_charges`, answer field `accusation`, a
list of charge names); eval.splits assigns each record to train / dev / test by a hash of its id, so a model is
never scored on a record it was trained on. Facts are cut to a token budget to keep CPU steps short.

Scoring: a free-form reply is read against the charge vocabulary (every charge in the set): punctuation and
spaces are dropped (eval.metrics.normalize_answer) and vocabulary names are matched longest-first without
overlap, so "犯盗窃罪。" and "盗窃" both read as the charge 盗窃, and 合同诈骗 is not also counted as 诈骗. A reply
naming no known charge counts as one wrong label. Accuracy is the exact match of the predicted and gold charge
sets; micro precision / recall / F1 are over (case, charge) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.protocols import Message
from domains.config import DomainConfig
from eval.evalsets import load_evalset
from eval.metrics import normalize_answer
from eval.splits import Split
from training.args import PromptArgs

UNKNOWN = "<unknown>"


@dataclass(frozen=True, slots=True)
class ChargeCase:
    case_id: str
    fact: str
    charges: tuple[str, ...]


def load_cases(
    cfg: DomainConfig, evalset: str, splits: Sequence[str], file: Path | None = None, limit: int = 0
) -> list[ChargeCase]:
    spec = cfg.evalset(evalset)
    wanted: frozenset[Split] = frozenset(splits)  # type: ignore[arg-type]
    loaded = load_evalset(cfg, evalset, file=file, splits=wanted, require_gold=False, limit=limit)
    cases = []
    for rec in loaded.records:
        labels = rec.fields.get(spec.answer_field)
        labels = [labels] if isinstance(labels, str) else list(labels or [])
        if rec.query and labels:
            cases.append(ChargeCase(rec.record_id, rec.query, tuple(str(x) for x in labels)))
    return cases


def charge_vocabulary(cfg: DomainConfig, evalset: str, file: Path | None = None) -> tuple[str, ...]:
    """Every charge name of the set (all splits): the labels a reply is read against."""
    cases = load_cases(cfg, evalset, ("train", "dev", "test"), file=file)
    return tuple(sorted({c for case in cases for c in case.charges}))


def truncate_tokens(tokenizer: Any, text: str, max_tokens: int) -> str:
    """The longest prefix of `text` that fits in `max_tokens` tokens (cut at a token's character offset)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= max_tokens:
        return text
    return text[: offsets[max_tokens - 1][1]]


def prompt_messages(prompts: PromptArgs, text: str, context: str = "") -> list[Message]:
    if context:
        user = prompts.user_with_context.format(context=context, input=text)
    else:
        user = prompts.user.format(input=text)
    system = [Message("system", prompts.system)] if prompts.system else []
    return [*system, Message("user", user)]


def target_text(prompts: PromptArgs, charges: Sequence[str]) -> str:
    return prompts.label_separator.join(f"{c}{prompts.label_suffix}" for c in charges)


class ChargeReader:
    """Reads the charges a reply names, against a fixed vocabulary (see module doc)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        by_key = {normalize_answer(name): name for name in vocabulary}
        self._keys = sorted(by_key, key=len, reverse=True)  # longest first: 合同诈骗 before 诈骗
        self._names = by_key

    def read(self, reply: str) -> frozenset[str]:
        text = normalize_answer(reply)
        taken = [False] * len(text)
        found = set()
        for key in self._keys:
            start = text.find(key)
            while start >= 0:
                if not any(taken[start : start + len(key)]):
                    taken[start : start + len(key)] = [True] * len(key)
                    found.add(self._names[key])
                start = text.find(key, start + 1)
        return frozenset(found) if found or not text else frozenset({UNKNOWN})


def score_charges(predicted: Sequence[frozenset[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """Exact set accuracy and micro P / R / F1 over (case, charge) pairs; all in percent."""
    if len(predicted) != len(gold) or not gold:
        raise ValueError("score_charges: need as many predictions as gold sets, at least one")
    tp = fp = fn = exact = 0
    for pred, ref in zip(predicted, gold, strict=True):
        ref_set = set(ref)
        tp += len(pred & ref_set)
        fp += len(pred - ref_set)
        fn += len(ref_set - pred)
        exact += pred == ref_set
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": 100.0 * exact / len(gold),
        "micro_f1": 100.0 * f1,
        "micro_precision": 100.0 * precision,
        "micro_recall": 100.0 * recall,
    }


def case_row(case: ChargeCase, reply: str, predicted: frozenset[str]) -> Mapping[str, Any]:
    return {"id": case.case_id, "gold": list(case.charges), "reply": reply, "predicted": sorted(predicted),
            "correct": predicted == set(case.charges)}
