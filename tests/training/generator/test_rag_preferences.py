"""DPO after RAG-SFT: pairs from the product's prompt scored by the citation check, a DPO run on the SFT model merged,
and the two adapters shipped as one that equals applying both (the tiny model)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakes import ScriptedGenerator, fixed_retriever

from cli import main
from core.protocols import GenerationParams
from core.records import Chunk, Hit
from models.lora_compose import write_composed
from models.peft_lora import read_lora
from rag.abstention import refusal_sentence
from training.args import load_recipe
from training.generator.rag_preferences import preference_rows, rejection, write_jsonl_rows
from training.generator.rag_sft import corpus_chunks, rag_example
from training.launch import CONFIGS_DIR

ARTICLE = Chunk("c1", "民法典#188", "向人民法院请求保护民事权利的诉讼时效期间为三年。", 0, 24,
                title="中华人民共和国民法典 第一百八十八条")


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def _example(legal):
    from eval.evalsets import EvalRecord

    return rag_example(legal, EvalRecord("q1", "借钱不还几年内能起诉？"), "借钱不还几年内能起诉？",
                       [Hit(ARTICLE, 0.9, "dense")])


@pytest.mark.parametrize(("reply", "why"), [
    ("诉讼时效期间为三年[1]。", None),  # supported and cited: nothing to prefer over it
    ("诉讼时效期间为三年。", "cites_nothing"),
    ("诉讼时效期间为五年[1]。", "unsupported_citation"),
    ("现有法律条文库中没有找到足以回答该问题的依据。", "declined_answerable"),
])
def test_a_reply_loses_to_an_answer_target_only_where_the_checks_fault_it(legal, reply, why) -> None:
    lost = rejection(_example(legal), "诉讼时效期间为三年[1]。", reply, legal)
    assert (lost[0] if lost else None) == why


def test_on_an_unanswerable_prompt_answering_anyway_loses(legal) -> None:
    refusal = refusal_sentence(legal.prompts)
    assert rejection(_example(legal), refusal, "可以起诉[1]。", legal)[0] == "answered_unanswerable"
    assert rejection(_example(legal), refusal, "给出的条文无法回答这个问题。", legal) is None


def test_pairs_are_written_in_the_preference_format_dpo_reads(legal, tokenizer, tmp_path) -> None:
    from training.generator.preferences import load_pairs

    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=4", "data.refusals=1"])
    corpus = corpus_chunks(legal)
    retriever = fixed_retriever([Hit(c, 0.9, "dense") for c in list(corpus.values())[:5]])
    counts: Counter[str] = Counter()
    generator = ScriptedGenerator(*["我认为可以。"] * 40)  # uncited on answerable prompts, an answer on the others
    rows = preference_rows(legal, recipe, tokenizer, retriever, generator, GenerationParams(), counts=counts)
    n = write_jsonl_rows(rows, tmp_path / "pairs.jsonl")
    assert set(counts) <= {"cites_nothing", "answered_unanswerable", "chosen_target"}
    assert n == counts["chosen_target"] == counts["cites_nothing"] + counts["answered_unanswerable"] > 0
    row = json.loads((tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert row["prompt"][0]["role"] == "system" and row["rejected"] == "我认为可以。"
    recipe_dpo = load_recipe(CONFIGS_DIR / "dpo_legal_rag.toml", [f'data.path="{tmp_path / "pairs.jsonl"}"'])
    pairs, report = load_pairs(legal, recipe_dpo.data)
    assert len(pairs) == n and report.kept == n


class CopyingGenerator:
    """Replies with the first sentence of passage [1], word for word, under a passage it was not given ([9])."""

    name = "copying"

    def generate(self, messages, params) -> str:
        shown = next(m.content for m in messages if m.role == "user")
        return re.search(r"\[1\][^\n]*\n([^。；：\n]+)", shown).group(1) + "[9]。"


def test_corrected_chosen_is_the_reply_with_its_fault_fixed(legal, tokenizer) -> None:
    recipe = load_recipe(CONFIGS_DIR / "sft_legal_rag.toml", ["data.limit=6", "data.refusals=0"])
    counts: Counter[str] = Counter()
    # no index: the passages are the gold articles and sampled others (training/generator/rag_sft.py)
    rows = list(preference_rows(legal, recipe, tokenizer, None, CopyingGenerator(), GenerationParams(),
                                counts=counts, chosen="corrected"))
    assert rows and counts["chosen_corrected"] == len(rows), counts
    for row in rows:
        assert row["why"] == "unsupported_citation" and row["chosen_from"] == "corrected"
        assert row["chosen"] == row["rejected"].replace("[9]", "[1]")  # the same words, cited where they are


def _lora_dir(folder: Path, modules: dict[str, tuple[int, int]], seed: int, rank: int = 2, alpha: float = 4.0):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": alpha}))
    tensors = {}
    for module, (out_dim, in_dim) in modules.items():
        key = f"base_model.model.model.layers.0.{module}.lora_{{}}.weight"
        tensors[key.format("A")] = rng.standard_normal((rank, in_dim)).astype(np.float32)
        tensors[key.format("B")] = rng.standard_normal((out_dim, rank)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder


def test_composing_two_adapters_adds_their_deltas_exactly(tmp_path) -> None:
    first = _lora_dir(tmp_path / "sft", {"self_attn.q_proj": (8, 8)}, seed=0)
    second = _lora_dir(tmp_path / "dpo", {"self_attn.q_proj": (8, 8), "self_attn.v_proj": (4, 8)}, seed=1,
                       rank=3, alpha=3.0)
    both = read_lora(write_composed(first, second, tmp_path / "both"))
    one, two = read_lora(first), read_lora(second)
    np.testing.assert_allclose(both.delta("blk.0.attn_q.weight"),
                               one.delta("blk.0.attn_q.weight") + two.delta("blk.0.attn_q.weight"), atol=1e-5)
    np.testing.assert_allclose(both.delta("blk.0.attn_v.weight"), two.delta("blk.0.attn_v.weight"), atol=1e-5)
    assert both.scale == 1.0 and both.pairs["blk.0.attn_v.weight"][0].shape[0] == 5


def test_dpo_on_the_sft_model_ships_as_one_adapter_equal_to_both(tiny_lm_dir, tmp_path) -> None:
    """SFT adapter -> DPO with it merged (train.init_adapter) -> `train ship` folds both: the shipped adapter on the
    base gives the logits of base + SFT merged + DPO merged."""
    import torch
    from peft import PeftModel
    from tiny_models import build_tiny_lora
    from transformers import AutoModelForCausalLM

    build_tiny_lora(tiny_lm_dir, tmp_path / "sft")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": f"问题{i}"}], "chosen": "好的[1]。",
                                         "rejected": "不知道。"}, ensure_ascii=False) + "\n" for i in range(4)))
    run = tmp_path / "dpo"
    assert main(["train", "dpo", "--domain", "legal", "--recipe", str(CONFIGS_DIR / "dpo_legal_rag.toml"),
                 "--model", str(tiny_lm_dir), "--max-steps", "2", "--output", str(run), "--set",
                 f'data.path="{pairs}"', "--set", f'train.init_adapter="{tmp_path / "sft"}"', "--set",
                 "train.precision='fp32'", "--set", "train.learning_rate=0.05", "--set", "lora.layers=[0, 1]",
                 "--set", "train.max_length=64"]) == 0
    domain = tmp_path / "legal"
    domain.mkdir()
    shutil.copy(Path(__file__).resolve().parents[3] / "domains" / "legal" / "domain.toml", domain / "domain.toml")
    from models.ship_adapter import ship_adapter

    shipped, _ = ship_adapter(run, domain)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tmp_path / "sft")
        merged = PeftModel.from_pretrained(merged.merge_and_unload(), run / "adapter").merge_and_unload()
        expected = merged(ids).logits
        one = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), shipped)(ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir)(ids).logits
    assert not torch.allclose(base, expected, atol=1e-3)
    torch.testing.assert_close(one, expected, atol=2e-3, rtol=1e-3)  # float16 shipping: within its rounding
