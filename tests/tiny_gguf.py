"""A tiny scripted GGUF for the edge tests: a real llama.cpp model (Qwen2 architecture, 1 layer, hidden 64, the tiny
BPE tokenizer of tiny_models.py and its ChatML template) whose greedy reply is a sentence chosen by the test.

How it is scripted: the attention and MLP write nothing (their output projections are zero), so the last hidden
state is the current token's embedding; the chain's tokens get orthonormal embeddings and the output matrix maps
each one to the next, so greedy decoding walks "\\n" (the end of the ChatML generation prompt) -> the sentence's
tokens -> <|im_end|>. No torch: numpy, `tokenizers` and `gguf` only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HIDDEN, FFN, HEADS, KV_HEADS = 64, 128, 4, 2


def _vocab(tokenizer_dir: Path) -> tuple[list[str], list[str], dict[str, int]]:
    data = json.loads((tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = dict(data["model"]["vocab"])
    for added in data.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [""] * (max(vocab.values()) + 1)
    for text, idx in vocab.items():
        tokens[idx] = text
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, merges, vocab


def _chain(tokenizer_dir: Path, script: str, vocab: dict[str, int]) -> list[int]:
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")).encode(script, add_special_tokens=False).ids
    chain = [vocab["Ċ"], *ids, vocab["<|im_end|>"]]  # Ċ: byte-level "\n", the prompt's last token
    if len(set(chain)) != len(chain) or len(chain) > HIDDEN:
        raise ValueError(f"script {script!r}: its {len(chain)} tokens must be distinct and at most {HIDDEN}")
    return chain


def _weights(n_vocab: int, chain: list[int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    embed = (rng.standard_normal((n_vocab, HIDDEN)) * 0.02).astype(np.float32)
    output = np.zeros((n_vocab, HIDDEN), dtype=np.float32)
    for step, token in enumerate(chain):
        embed[token] = np.eye(HIDDEN, dtype=np.float32)[step]  # orthonormal: RMS-normed to 8 * e_step
        if step + 1 < len(chain):
            output[chain[step + 1]] = 2.0 * np.eye(HIDDEN, dtype=np.float32)[step]  # logit 16, all others 0
    head = HIDDEN // HEADS

    def small(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones(HIDDEN, dtype=np.float32)
    return {
        "token_embd.weight": embed, "output.weight": output, "output_norm.weight": ones,
        "blk.0.attn_norm.weight": ones, "blk.0.ffn_norm.weight": ones,
        "blk.0.attn_q.weight": small(HIDDEN, HIDDEN), "blk.0.attn_q.bias": np.zeros(HIDDEN, np.float32),
        "blk.0.attn_k.weight": small(KV_HEADS * head, HIDDEN),
        "blk.0.attn_k.bias": np.zeros(KV_HEADS * head, np.float32),
        "blk.0.attn_v.weight": small(KV_HEADS * head, HIDDEN),
        "blk.0.attn_v.bias": np.zeros(KV_HEADS * head, np.float32),
        "blk.0.attn_output.weight": np.zeros((HIDDEN, HIDDEN), np.float32),  # attention writes nothing
        "blk.0.ffn_gate.weight": small(FFN, HIDDEN), "blk.0.ffn_up.weight": small(FFN, HIDDEN),
        "blk.0.ffn_down.weight": np.zeros((HIDDEN, FFN), np.float32),  # nor does the MLP
    }


def write_scripted_gguf(tokenizer_dir: Path, out: Path, script: str, seed: int = 0) -> Path:
    """A GGUF at `out` that answers any chat with `script` (greedy), with the tokenizer's chat template inside."""
    from gguf import GGUFWriter, TokenType

    tokens, merges, vocab = _vocab(tokenizer_dir)
    chain = _chain(tokenizer_dir, script, vocab)
    template = json.loads((tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get(
        "chat_template") or (tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    writer = GGUFWriter(str(out), "qwen2")
    writer.add_name("tiny-scripted-qwen2")
    writer.add_block_count(1)
    writer.add_context_length(2048)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    specials = {vocab[t] for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")}
    writer.add_token_types([TokenType.CONTROL if i in specials else TokenType.NORMAL for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(template)
    for name, tensor in _weights(len(tokens), chain, seed).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
