"""Which device and precision a model runs in, chosen by the machine it runs on ("auto") or as configured.

bf16 halves the bytes a model moves, but it only pays where the hardware computes in bf16: EmbeddingGemma on one
thread ran ~3.5x faster in bf16 than fp32 on an AVX-512-BF16 / AMX CPU (MODELS.md) and 7x *slower* on an
AVX2-only AMD EPYC (issue 11: 2.0 vs 15.0 queries/s), where torch converts every bf16 value in software. So
"auto" means bf16 on a CUDA GPU that supports it or on a CPU with native bf16, else fp32.

Detection reads /proc/cpuinfo and asks torch, lazily and once per process; torch is imported inside functions only,
so importing this module costs nothing. The decisions are pure functions of what was detected, so tests inject it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from core.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16"]
Device = Literal["auto", "cpu", "cuda"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
DEVICES: tuple[str, ...] = get_args(Device)
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags of native bf16 arithmetic (VDPBF16PS, TDPBF16PS)
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    reason: str  # for the start-up log, e.g. "auto: this CPU has no native bf16"


@dataclass(frozen=True, slots=True)
class Placement:
    device: Choice
    precision: Choice

    def describe(self) -> str:
        return (f"precision {self.precision.value} ({self.precision.reason}), "
                f"device {self.device.value} ({self.device.reason})")


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The `flags` of the first processor in a /proc/cpuinfo text; empty when it has none (e.g. ARM's
    `Features`, which this rule does not read: such CPUs get fp32)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags; empty where /proc/cpuinfo does not exist (macOS, Windows)."""
    try:
        return parse_cpu_flags(CPUINFO.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


@lru_cache(maxsize=1)
def torch_cpu_capability() -> str | None:
    """The vector ISA torch's own CPU kernels dispatch to ("AVX2", "AVX512", ...); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    get = getattr(torch.backends.cpu, "get_cpu_capability", None)
    return str(get()) if get is not None else None


def has_native_bf16(flags: frozenset[str], torch_capability: str | None) -> bool:
    """Whether bf16 runs at least as fast as fp32 on this CPU: the one rule behind "auto".

    It needs the hardware (AVX512_BF16 or AMX-BF16: bf16 dot products in one instruction; without them every
    bf16 operand is widened to fp32 in software, which made EmbeddingGemma 7x slower on an AVX2-only EPYC) and
    torch's kernels using it: torch dispatches to its AVX-512 kernels only when its capability says AVX512 (a build
    or `ATEN_CPU_CAPABILITY=avx2` can hold it to AVX2, and bf16 element-wise ops then go through the slow path).
    An unknown capability (no torch to ask) trusts the flags.
    """
    if not flags & BF16_FLAGS:
        return False
    return torch_capability is None or torch_capability.upper().startswith(("AVX512", "AMX"))


def cpu_has_native_bf16() -> bool:
    return has_native_bf16(cpu_flags(), torch_cpu_capability())


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def cuda_bf16_supported() -> bool:
    """bf16 tensor cores arrived with Ampere (compute capability 8.0); older GPUs emulate it slowly."""
    import torch

    return bool(torch.cuda.is_bf16_supported())


def device_choice(requested: str, *, cuda: bool | None = None) -> Choice:
    """`requested` is "auto" (CUDA when torch sees a GPU, else the CPU), "cpu" or "cuda". `cuda` overrides the
    detection (tests)."""
    if requested not in DEVICES:
        raise ConfigError.invalid_choice("device", requested, DEVICES)
    if requested == "cpu":
        return Choice("cpu", "as configured")
    has_cuda = cuda_available() if cuda is None else cuda
    if requested == "cuda":
        if not has_cuda:
            raise ConfigError("device = 'cuda' but torch sees no CUDA GPU (no GPU, no driver, or a CPU-only torch "
                              "build); set device = 'auto' (CUDA when present, else CPU) or 'cpu'")
        return Choice("cuda", "as configured")
    return Choice("cuda", "auto: a CUDA GPU is present") if has_cuda else Choice("cpu", "auto: no CUDA GPU")


def precision_choice(requested: str, device: str, *, native_bf16: bool | None = None) -> Choice:
    """`requested` is "auto", "fp32" or "bf16"; `device` a resolved one ("cpu", "cuda", "cuda:1").
    `native_bf16` overrides the detection for the device (tests)."""
    if requested not in PRECISIONS:
        raise ConfigError.invalid_choice("precision", requested, PRECISIONS)
    on_cuda = device.startswith("cuda")
    if native_bf16 is None:
        native_bf16 = cuda_bf16_supported() if on_cuda else cpu_has_native_bf16()
    where = "this GPU" if on_cuda else "this CPU"
    if requested == "fp32":
        return Choice("fp32", "as configured")
    if requested == "bf16":
        # kept as asked, but said: on such a CPU bf16 is the slow choice
        return Choice("bf16", "as configured" if native_bf16 else f"as configured, though {where} has no native bf16")
    if native_bf16:
        return Choice("bf16", f"auto: {where} has native bf16")
    return Choice("fp32", f"auto: {where} has no native bf16")


def resolve_device(requested: str, *, cuda: bool | None = None) -> str:
    return device_choice(requested, cuda=cuda).value


def resolve_precision(requested: str, device: str, *, native_bf16: bool | None = None) -> str:
    return precision_choice(requested, device, native_bf16=native_bf16).value


def choose_placement(precision: str = "auto", device: str = "auto") -> Placement:
    """Device first: the precision rule depends on where the model runs."""
    chosen = device_choice(device)
    return Placement(chosen, precision_choice(precision, chosen.value))
