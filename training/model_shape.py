"""The shape of a recipe's base model without its weights: the config, and the parameter counts the recipe's
method trains, counted by peft on a model built on the meta device (no memory, no download).

A registry model that is only fetched as a GGUF (the 1.5B generator before its ~8 GB conversion) is read from
the GGUF's own metadata, so a GPU recipe can be checked on a machine that will never train it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.args import Recipe
from training.model_source import ModelSource, model_source

DECODER_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, slots=True)
class ModelShape:
    ref: str
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    total_params: int
    trainable_params: int
    quantizable_params: int  # the decoder's Linear weights: what QLoRA stores in 4 bits
    lowest_trained_layer: int  # the backward pass stops here (0 when every layer trains)

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.hidden // self.heads)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def load_config(source: ModelSource) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source.path, **source.kwargs())


def _meta_model(config: Any, recipe: Recipe) -> Any:
    """The recipe's model (with its LoRA adapters unless full) on the meta device: shapes without memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    with torch.device("meta"):
        if recipe.task == "reward":
            model = AutoModelForSequenceClassification.from_config(config, num_labels=1)
        else:
            model = AutoModelForCausalLM.from_config(config)
    if recipe.train.method == "full":
        return model
    from peft import get_peft_model

    from training.trl_configs import lora_config

    return get_peft_model(model, lora_config(recipe.lora, "SEQ_CLS" if recipe.task == "reward" else "CAUSAL_LM"))


def _layer_of(name: str) -> int | None:
    parts = name.split(".")
    for before, after in zip(parts, parts[1:], strict=False):
        if before == "layers" and after.isdigit():
            return int(after)
    return None


def model_shape(ref: str, recipe: Recipe) -> ModelShape:
    config = load_config(model_source(ref))
    model = _meta_model(config, recipe)
    trainable = [(name, p.numel()) for name, p in model.named_parameters() if p.requires_grad]
    layers = [layer for name, _ in trainable if (layer := _layer_of(name)) is not None]
    quantizable = sum(p.numel() for name, p in model.named_parameters()
                      if name.endswith(".weight") and "lora_" not in name
                      and any(f".{linear}." in name for linear in DECODER_LINEARS))
    return ModelShape(
        ref=ref,
        layers=config.num_hidden_layers,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        heads=config.num_attention_heads,
        kv_heads=getattr(config, "num_key_value_heads", config.num_attention_heads),
        vocab=config.vocab_size,
        total_params=sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name),
        trainable_params=sum(n for _, n in trainable),
        quantizable_params=quantizable,
        lowest_trained_layer=min(layers) if recipe.train.method != "full" and layers else 0,
    )
