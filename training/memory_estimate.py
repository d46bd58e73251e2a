"""Peak memory of a training step, estimated from the model's shape, the method, the precision and the largest
batch, so a recipe can be sized before a GPU is rented. An estimate, not a measurement: its terms are the ones
that grow with the run, and `training/configs/README.md` puts it beside peaks measured on an H200.

The terms:
- weights: every base weight in the load dtype; under QLoRA the decoder's Linear weights are NF4 (half a byte, plus
  one fp32 absmax per 64-weight block) and the rest stays bf16 (`training.model_io.prepare_for_kbit`).
- optimizer: LoRA adapters train in fp32 (peft upcasts them), so 16 bytes each: weight, gradient, Adam's two
  moments. Full fine-tuning keeps gradient and moments in the load dtype (torch's AdamW: states like the weight).
- activations: what the backward pass keeps per token of each layer it reaches (from the lowest trained layer up).
  Per layer about 11h + 2kv + 4i values: the norms' inputs and their fp32 upcast, q / k / v, the attention output,
  the MLP's gate, up, activation and product. Gradient checkpointing keeps one h-wide input per layer and
  recomputes one layer at a time.
- logits: tokens x vocabulary, in the compute dtype plus the fp32 copy and log-softmax the loss keeps: with a
  152k vocabulary this is the largest activation of a short sequence.

Full fine-tuning peaks either in the backward pass (activations, logits and the gradients filling in) or at the
optimizer step (every gradient at once): the larger of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.model_shape import ModelShape

MIB = 1024 * 1024
NF4_BYTES = 0.5 + 4 / 64  # 4-bit weight + an fp32 absmax per block of 64 (no double quantisation)
ADAPTER_BYTES = 16  # fp32 weight + gradient + Adam m, v
LOGIT_EXTRA_BYTES = 8  # the loss's fp32 copy of the logits and the log-softmax it saves


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights_mib: float
    optimizer_mib: float
    activations_mib: float
    logits_mib: float
    peak_mib: float

    def as_dict(self) -> dict[str, float]:
        return {name: round(getattr(self, name)) for name in self.__slots__}


def _weights_bytes(shape: ModelShape, method: str, dtype_bytes: int) -> float:
    if method == "qlora":
        return shape.quantizable_params * NF4_BYTES + (shape.total_params - shape.quantizable_params) * 2
    return shape.total_params * dtype_bytes


def _activation_bytes(shape: ModelShape, tokens: int, dtype_bytes: int, checkpointing: bool) -> float:
    per_layer = (11 * shape.hidden + 2 * shape.kv_dim + 4 * shape.intermediate) * dtype_bytes
    layers = shape.layers - shape.lowest_trained_layer
    if checkpointing:
        return tokens * (layers * shape.hidden * dtype_bytes + per_layer)
    return tokens * layers * per_layer


def estimate_memory(
    shape: ModelShape, method: str, precision: str, tokens: int, gradient_checkpointing: bool = False
) -> MemoryEstimate:
    """`tokens`: the sequences of the largest micro-batch times their padded length (both sides of a preference
    pair count). `precision` is the resolved one ("bf16" or "fp32")."""
    dtype_bytes = 2 if precision == "bf16" or method == "qlora" else 4
    weights = _weights_bytes(shape, method, dtype_bytes)
    activations = _activation_bytes(shape, tokens, dtype_bytes, gradient_checkpointing)
    logits = tokens * shape.vocab * (dtype_bytes + LOGIT_EXTRA_BYTES)
    if method == "full":
        gradients = shape.total_params * dtype_bytes
        moments = 2 * shape.total_params * dtype_bytes
        optimizer = gradients + moments
        peak = weights + moments + max(activations + logits, gradients)
    else:
        optimizer = shape.trainable_params * ADAPTER_BYTES
        peak = weights + optimizer + activations + logits
    return MemoryEstimate(weights / MIB, optimizer / MIB, activations / MIB, logits / MIB, peak / MIB)
