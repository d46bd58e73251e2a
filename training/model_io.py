"""Loading the base model for a recipe: causal LM or score-head classifier, bf16 or fp32, LoRA / QLoRA / full.

Precision "auto" follows `core.hardware`: bf16 where trl trains on a CUDA GPU or on a CPU with native bf16, fp32
elsewhere (bf16 in software is several times slower than fp32 on such CPUs).

QLoRA loads the base in 4-bit through bitsandbytes, which needs a CUDA GPU: on a CPU machine it raises a clear
error instead of silently training something else.
"""

from __future__ import annotations

import logging
from typing import Any

from core import hardware
from core.errors import DossierError, MissingDependency
from models.registry import resolve_model
from training.args import TrainArgs

log = logging.getLogger(__name__)


class GpuRequired(DossierError):
    """The recipe asks for something only a CUDA GPU can run (QLoRA)."""


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def training_precision(precision: str) -> hardware.Choice:
    """"auto" resolved for the device trl trains on (CUDA when present: `training.trl_configs`); explicit kept."""
    return hardware.precision_choice(precision, "cuda" if hardware.cuda_available() else "cpu")


def torch_dtype(precision: str) -> Any:
    import torch

    choice = training_precision(precision)
    log.info("precision %s (%s)", choice.value, choice.reason)
    return torch.bfloat16 if choice.value == "bf16" else torch.float32


def load_tokenizer(ref: str, padding_side: str = "right") -> Any:
    from transformers import AutoTokenizer

    from training.model_source import model_source

    source = model_source(ref)  # a registry model fetched only as a GGUF: its tokenizer from the GGUF (train plan)
    tokenizer = AutoTokenizer.from_pretrained(source.path, **source.kwargs())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def _quantization(args: TrainArgs) -> dict[str, Any]:
    if args.method != "qlora":
        return {}
    import torch

    if not torch.cuda.is_available():
        raise GpuRequired("method = 'qlora' loads the base in 4-bit with bitsandbytes, which needs a CUDA GPU; "
                          "use method = 'lora' on this machine")
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as err:  # pragma: no cover - transformers always has it
        raise MissingDependency("bitsandbytes", extra="train") from err
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    return {"quantization_config": config, "device_map": "auto"}


def load_model(ref: str, args: TrainArgs, head: str = "causal-lm", num_labels: int = 1) -> Any:
    """The base model for training: `head` is 'causal-lm' or 'score' (a reward model: one scalar per sequence)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    set_threads(args.threads)
    path = resolve_model(ref)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(args.precision), **_quantization(args)}
    if head == "score":
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=num_labels, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    if args.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.init_adapter).merge_and_unload()
        log.info("merged %s into the base before training", args.init_adapter)
    if args.method == "qlora":
        prepare_for_kbit(model, args.gradient_checkpointing)
    log.info("loaded %s (%s, %s)", path, head, training_precision(args.precision).value)
    return model


def prepare_for_kbit(model: Any, gradient_checkpointing: bool) -> Any:
    """What peft's `prepare_model_for_kbit_training` does for a 4-bit base, less its upcast of every weight that is
    not 4-bit to fp32: on Qwen2.5-0.5B that made the embeddings and the untied lm_head (272M parameters) fp32 and put
    QLoRA's CUDA peak above LoRA's (2,289 vs 2,026 MiB, batch 2, H200). Those weights stay in the load dtype (bf16),
    frozen; the LoRA adapters, created after this, train in fp32 as peft makes them. Measured since: 1,466 vs 2,045
    MiB (training/configs/README.md)."""
    for param in model.parameters():
        param.requires_grad_(False)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    return model


def parameter_counts(model: Any) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "total_params": total}
