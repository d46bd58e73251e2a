"""The generator as one OpenVINO graph per step: (ids, attention mask, positions, *past K/V) -> (last logits,
*present K/V), written out over a transformers Qwen2 model's weights (a domain's adapter merged first), converted to
OpenVINO IR with int8 weights (NNCF) and kept in the model cache, keyed by the model and the adapter.

Why a hand-written step and not the transformers forward: the trace then holds no transformers cache class (whose
shapes change between versions) and computes the output projection for the last position only, which is what
sampling reads (the projection is a quarter of the 0.5B model's multiply-adds per token). Prefill and decode are the
same graph with a different number of new tokens; the generator makes it stateful, so the K/V stays inside
OpenVINO between steps.

`bench/bench_openvino_generator.py` measured it against llama.cpp on the legal prompts (edge/README.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError, MissingDependency
from core.hashing import sha256_file
from core.paths import cache_dir
from models.peft_lora import WEIGHTS as ADAPTER_WEIGHTS

log = logging.getLogger(__name__)

Weights = Literal["int8", "int4", "f32"]
WEIGHTS: tuple[Weights, ...] = ("int8", "int4", "f32")
IR_NAME = "step.xml"
FORM_VERSION = "1"  # bump when the graph's inputs or outputs change: the cached IR is then rebuilt


def step_module(model: Any) -> Any:
    """Qwen2 over `model`'s weights as a torch module of one generation step."""
    import torch

    class QwenStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cfg = model.config
            self.body, self.head = model.model, model.lm_head
            self.heads, self.kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
            self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
            theta = rope_theta(cfg)
            steps = torch.arange(0, self.head_dim, 2).float() / self.head_dim
            self.register_buffer("inv_freq", 1.0 / theta ** steps, persistent=False)

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple[Any, ...]:
            new = input_ids.shape[1]
            freqs = position_ids[0].float()[:, None] * self.inv_freq[None, :]
            angles = torch.cat([freqs, freqs], dim=-1)
            cos, sin = angles.cos()[None, None], angles.sin()[None, None]
            seen = past[0].shape[2]
            # causal over the cache: new token i (position seen + i) sees keys 0 .. seen + i
            mask = torch.arange(seen + new)[None, :] <= (torch.arange(new) + seen)[:, None]
            hidden, presents = self.body.embed_tokens(input_ids), []
            for i, layer in enumerate(self.body.layers):
                attn, x = layer.self_attn, layer.input_layernorm(hidden)
                q, k, v = (proj(x).view(1, new, n, self.head_dim).transpose(1, 2) for proj, n in
                           ((attn.q_proj, self.heads), (attn.k_proj, self.kv_heads), (attn.v_proj, self.kv_heads)))
                q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
                k, v = torch.cat([past[2 * i], k], dim=2), torch.cat([past[2 * i + 1], v], dim=2)
                presents += [k, v]
                group = self.heads // self.kv_heads
                out = torch.nn.functional.scaled_dot_product_attention(
                    q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), attn_mask=mask)
                hidden = hidden + attn.o_proj(out.transpose(1, 2).reshape(1, new, self.heads * self.head_dim))
                hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
            return (self.head(self.body.norm(hidden[:, -1:, :]))[:, 0, :], *presents)

    return QwenStep().eval()


def rope_theta(cfg: Any) -> float:
    """Where the rotary base lives differs between transformers versions."""
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta") or getattr(cfg, "rope_theta", None) or 10000.0)


def rotate_half(x: Any) -> Any:
    import torch

    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def merged_fp32_model(model_path: str, adapter_path: str = "", threads: int = 1) -> Any:
    """The transformers model in fp32 (the trace's precision) with the adapter merged, on the CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if adapter_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
    return model.eval()


def convert_step(model: Any, dest: Path, weights: Weights) -> Path:
    """Trace `model`'s step graph into OpenVINO IR at `dest` (`weights`: int8 per channel or int4 in groups through
    NNCF, or f32 as traced)."""
    import openvino as ov
    import torch

    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    shape = (1, cfg.num_key_value_heads, 3, head_dim)
    example = (torch.ones(1, 5, dtype=torch.long), torch.ones(1, 8, dtype=torch.long), torch.arange(3, 8)[None],
               *[torch.zeros(shape) for _ in range(2 * cfg.num_hidden_layers)])
    with torch.no_grad():
        graph = ov.convert_model(step_module(model), example_input=example)
    if weights != "f32":
        # NNCF reports to stdout (a table and a progress bar), which `dossier ask --json` keeps for its JSON
        with contextlib.redirect_stdout(sys.stderr):
            import nncf

            nncf.set_log_level(logging.WARNING)
            if weights == "int4":  # groups of 128 inputs where every width allows (Qwen2.5-0.5B: 896, 4864)
                group = 128 if math.gcd(cfg.hidden_size, cfg.intermediate_size) % 128 == 0 else 32
                graph = nncf.compress_weights(graph, mode=nncf.CompressWeightsMode.INT4_ASYM, group_size=group,
                                              ratio=1.0)
            else:
                graph = nncf.compress_weights(graph)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(graph, dest, compress_to_fp16=False)
    return dest


def step_dir(model_path: str, adapter_sha256: str, weights: Weights) -> Path:
    """<cache>/models/openvino-step/<model dir name>-<key>: the key covers the model's path, the adapter's weights
    and the form, so a retrained adapter never reuses a stale graph."""
    identity = f"{Path(model_path).resolve()}|{adapter_sha256}|{weights}|{FORM_VERSION}"
    key = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return cache_dir() / "models" / "openvino-step" / f"{Path(model_path).name}-{key}"


def step_ir(model_path: str, *, adapter_path: str = "", weights: Weights = "int8", threads: int = 1) -> Path:
    """The step graph's IR for the model (and adapter), built on first use (a minute for the 0.5B model) into a
    temporary folder renamed into place, so an interrupted build leaves nothing a later load would trust."""
    if weights not in WEIGHTS:
        raise ConfigError.invalid_choice("OpenVINO weights", weights, WEIGHTS)
    final = step_dir(model_path, sha256_file(Path(adapter_path) / ADAPTER_WEIGHTS) if adapter_path else "", weights)
    if (final / IR_NAME).is_file():
        return final / IR_NAME
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError as err:
        raise MissingDependency("openvino", extra="openvino") from err
    work = final.with_name(final.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    log.info("building the OpenVINO step graph of %s%s (%s weights) into %s", model_path,
             f" + LoRA {adapter_path}" if adapter_path else "", weights, final)
    convert_step(merged_fp32_model(model_path, adapter_path, threads), work / IR_NAME, weights)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    return final / IR_NAME
