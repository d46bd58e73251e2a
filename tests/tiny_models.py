"""Tiny, locally built models for tests: no downloads.

A byte-level BPE tokenizer is trained in-process on shipped legal text (so Chinese is tokenised sensibly),
given a ChatML chat template by hand, and paired with 2-layer Qwen2 models (hidden 64) built from a config.
Building all of them takes a few seconds; tests build them once per run (see conftest.py).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from domains import DOMAINS_DIR

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def training_lines(limit: int = 3000) -> list[str]:
    """Statute text and a few SFT turns: the characters tests will feed the tiny models."""
    lines: list[str] = []
    corpus = DOMAINS_DIR / "legal" / "data" / "corpus" / "criminal_law_articles.jsonl.gz"
    sft = DOMAINS_DIR / "legal" / "data" / "sft" / "lawyer_llama_sft.jsonl.gz"
    with gzip.open(corpus, "rt", encoding="utf-8") as f:
        lines += [json.loads(line)["text"] for line in f]
    with gzip.open(sft, "rt", encoding="utf-8") as f:
        for line in f:
            lines += [m["content"] for m in json.loads(line)["messages"]]
            if len(lines) >= limit:
                break
    return lines[:limit]


def build_tiny_tokenizer(dest: Path, vocab_size: int = 3000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(dest)
    return fast


def tiny_qwen2_config(tokenizer):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def build_tiny_causal_lm(dest: Path, seed: int = 0) -> Path:
    """A 2-layer Qwen2ForCausalLM with its tokenizer, saved to `dest`."""
    import torch
    from transformers import GenerationConfig, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(dest)
    model = Qwen2ForCausalLM(tiny_qwen2_config(tokenizer))
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(dest)
    return dest


def build_tiny_sequence_classifier(dest: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A 2-layer Qwen2ForSequenceClassification (reward model / reranker head) with its tokenizer."""
    import torch
    from transformers import Qwen2ForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = build_tiny_tokenizer(dest)
    config = tiny_qwen2_config(tokenizer)
    config.num_labels = num_labels
    Qwen2ForSequenceClassification(config).save_pretrained(dest)
    return dest


def build_tiny_lora(model_dir: Path, dest: Path, modules: tuple[str, ...] = ("q_proj", "v_proj"),
                    seed: int = 0) -> Path:
    """A peft LoRA adapter for the tiny causal LM with B non-zero (peft starts B at zero), so it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                           LoraConfig(r=2, lora_alpha=4, target_modules=list(modules)))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    model.save_pretrained(dest)
    return dest
