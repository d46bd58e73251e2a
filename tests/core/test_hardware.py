"""The "auto" rule for device and precision on canned /proc/cpuinfo texts: no test depends on the CPU it runs on."""

from __future__ import annotations

import pytest

from core import hardware
from core.errors import ConfigError
from core.hardware import has_native_bf16, parse_cpu_flags, resolve_device, resolve_precision

# Abridged but real flag lines (only the vector ones matter; the rest keeps the parser honest).
AMD_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand \
avx2 bmi2 sha_ni clwb
bugs\t\t: sysret_ss_attrs spectre_v1

processor\t: 1
flags\t\t: fpu avx512_bf16
"""
ZEN4_AVX512_BF16 = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vnni
"""
SAPPHIRE_RAPIDS_AMX = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512vl avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8
"""
SKYLAKE_AVX512 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\n"


def test_flags_are_the_first_processors() -> None:
    flags = parse_cpu_flags(AMD_AVX2)
    assert {"avx2", "fma", "clwb"} <= flags and "avx512f" not in flags
    assert "avx512_bf16" not in flags  # processor 1's line is not read
    assert parse_cpu_flags("") == frozenset() and parse_cpu_flags(ARM) == frozenset()


@pytest.mark.parametrize(("cpuinfo", "capability", "native"), [
    (AMD_AVX2, "AVX2", False),
    (ZEN4_AVX512_BF16, "AVX512", True),
    (SAPPHIRE_RAPIDS_AMX, "AVX512", True),
    (SKYLAKE_AVX512, "AVX512", False),  # AVX-512 without its bf16 instructions
    (ZEN4_AVX512_BF16, "AVX2", False),  # torch held to its AVX2 kernels (ATEN_CPU_CAPABILITY=avx2)
    (SAPPHIRE_RAPIDS_AMX, None, True),  # no torch to ask: the flags decide
    (ARM, "DEFAULT", False),
])
def test_native_bf16(cpuinfo: str, capability: str | None, native: bool) -> None:
    assert has_native_bf16(parse_cpu_flags(cpuinfo), capability) is native


def test_auto_precision() -> None:
    assert resolve_precision("auto", "cpu", native_bf16=False) == "fp32"
    assert resolve_precision("auto", "cpu", native_bf16=True) == "bf16"
    assert resolve_precision("auto", "cuda", native_bf16=True) == "bf16"
    assert resolve_precision("auto", "cuda:1", native_bf16=False) == "fp32"  # a pre-Ampere GPU


@pytest.mark.parametrize("native", [True, False])
def test_explicit_precision_is_kept(native: bool) -> None:
    assert resolve_precision("fp32", "cpu", native_bf16=native) == "fp32"
    assert resolve_precision("bf16", "cpu", native_bf16=native) == "bf16"
    reason = hardware.precision_choice("bf16", "cpu", native_bf16=native).reason
    assert ("no native bf16" in reason) is not native  # kept, but the log says it is the slow choice


def test_auto_precision_reads_this_machine_through_the_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: parse_cpu_flags(AMD_AVX2))
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX2")
    choice = hardware.precision_choice("auto", "cpu")
    assert (choice.value, choice.reason) == ("fp32", "auto: this CPU has no native bf16")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: parse_cpu_flags(SAPPHIRE_RAPIDS_AMX))
    monkeypatch.setattr(hardware, "torch_cpu_capability", lambda: "AVX512")
    assert hardware.precision_choice("auto", "cpu").value == "bf16"


def test_device() -> None:
    assert resolve_device("auto", cuda=False) == "cpu"
    assert resolve_device("auto", cuda=True) == "cuda"
    assert resolve_device("cpu", cuda=True) == "cpu"
    assert resolve_device("cuda", cuda=True) == "cuda"
    with pytest.raises(ConfigError, match="device = 'cuda' but torch sees no CUDA GPU.*'auto'.*'cpu'"):
        resolve_device("cuda", cuda=False)


def test_invalid_choices_name_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="'fp16x' is not valid; choose one of: auto, bf16, fp32"):
        resolve_precision("fp16x", "cpu", native_bf16=True)
    with pytest.raises(ConfigError, match="'tpu' is not valid; choose one of: auto, cpu, cuda"):
        resolve_device("tpu", cuda=False)


def test_placement_describes_both_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    placed = hardware.choose_placement("auto", "auto")
    assert placed.describe() == "precision fp32 (auto: this CPU has no native bf16), device cpu (auto: no CUDA GPU)"
