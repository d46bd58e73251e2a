"""Which llama.cpp build a process loads: the portable wheel, or a faster AVX-512 build where the CPU has it.

`make llama-cpp-wheel` installs a portable build (AVX2, no AVX-512, no AMX): pip's native build crashed in decode on
an AVX-512 / AMX machine (MODELS.md), and the same disk moves between CPUs here, an AVX-512 EPYC one day and an
AVX2-only one the next. `make llama-cpp-avx512` adds a second copy of the libraries, compiled with AVX-512 (F, CD,
VL, DQ, BW, VBMI, VNNI, BF16) and still without AMX, under `$DOSSIER_CACHE_DIR/llama-cpp/avx512/`, with
`build.json` listing the CPU flags it was compiled for. It builds only where this CPU has them all.

llama-cpp-python loads its libraries once, at its first import, from `$LLAMA_CPP_LIB_PATH` when that is set:
`select_build()` sets it before that import, to the fastest build whose flags this CPU reports, so one venv runs
on both kinds of machine. Prompt processing on the AVX-512 EPYC (2 cores, 800-token prompt, one run, builds
interleaved): Qwen2.5-Coder-0.5B Q4_K_M 156 -> 204-225 tokens/s, 1.5B 73 -> 99-103 tokens/s; decode unchanged
(bench/bench_llama_builds.py prints the figures for the machine it runs on).

`$DOSSIER_LLAMA_BUILD`: auto (default), portable, or avx512 (an error where the build is missing or the CPU lacks
a flag it needs). A `$LLAMA_CPP_LIB_PATH` set by the user wins over both.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from core.hardware import cpu_flags
from core.paths import cache_dir

log = logging.getLogger(__name__)

BUILD_ENV = "DOSSIER_LLAMA_BUILD"
LIB_ENV = "LLAMA_CPP_LIB_PATH"  # read by llama_cpp/llama_cpp.py at import
CHOICES = ("auto", "portable", "avx512")
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni",
                          "avx512_bf16"})
AVX512_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
                     "-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON "
                     "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")
LIBRARY = "libllama.so"


@dataclass(frozen=True)
class LlamaBuild:
    name: str
    lib_dir: Path | None  # None: the libraries inside the installed wheel
    needs: frozenset[str] = frozenset()


PORTABLE = LlamaBuild("portable", None)


def builds_root() -> Path:
    return cache_dir() / "llama-cpp"


def bindings_version() -> str | None:
    """The installed llama-cpp-python's version (the Makefile's LLAMA_CPP_VERSION), None where it is not installed."""
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_builds(root: Path, version: str | None) -> list[LlamaBuild]:
    """The extra builds under `root` (each `<name>/build.json` beside `<name>/lib/libllama.so`), by name, that were
    compiled from the bindings' `version` (the ctypes bindings must match the libraries; None: no bindings to
    match, nothing will load them anyway)."""
    found = []
    for manifest in sorted(root.glob("*/build.json")):
        lib_dir = manifest.parent / "lib"
        try:
            spec = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            log.warning("ignoring llama.cpp build %s: unreadable build.json (%s)", manifest.parent, err)
            continue
        if (version is not None and spec.get("version") != version) or not (lib_dir / LIBRARY).is_file():
            log.warning("ignoring llama.cpp build %s: not a complete build of llama-cpp-python %s", manifest.parent,
                        version)
            continue
        found.append(LlamaBuild(manifest.parent.name, lib_dir, frozenset(spec.get("needs", ()))))
    return found


def choose_build(requested: str, flags: frozenset[str], builds: list[LlamaBuild]) -> LlamaBuild:
    """`auto`: the first extra build whose flags the CPU has, else the portable wheel. A named build must exist and
    fit the CPU: a build compiled for instructions the CPU lacks dies of SIGILL, not with an error."""
    if requested not in CHOICES:
        raise ConfigError(f"{BUILD_ENV}={requested!r}: choose one of {', '.join(CHOICES)}")
    if requested == "portable":
        return PORTABLE
    for build in builds:
        if requested not in ("auto", build.name):
            continue
        missing = build.needs - flags
        if not missing:
            return build
        if requested != "auto":
            raise ConfigError(f"the {build.name} llama.cpp build needs CPU flags this CPU lacks "
                              f"({', '.join(sorted(missing))}): unset {BUILD_ENV} or set it to portable")
    if requested != "auto":
        raise ConfigError(f"no {requested} llama.cpp build in {builds_root()}: make llama-cpp-{requested}")
    return PORTABLE


@lru_cache(maxsize=1)
def select_build() -> LlamaBuild:
    """Point llama-cpp-python at the build to load; call before the first `import llama_cpp` (after it, the loaded
    libraries stay, and this only says which). Child processes inherit the choice through the environment."""
    if os.environ.get(LIB_ENV):
        return LlamaBuild("LLAMA_CPP_LIB_PATH", Path(os.environ[LIB_ENV]))
    build = choose_build(os.environ.get(BUILD_ENV, "auto"), cpu_flags(),
                         installed_builds(builds_root(), bindings_version()))
    if "llama_cpp.llama_cpp" in sys.modules:
        log.warning("llama_cpp was imported before the build was chosen: it keeps the libraries it loaded")
        return PORTABLE
    if build.lib_dir is not None:
        os.environ[LIB_ENV] = str(build.lib_dir)
    log.info("llama.cpp build: %s", build.name)
    return build


def build_avx512(root: Path, *, force: bool = False) -> Path | None:
    """Compile the installed llama-cpp-python's libraries with AVX-512 into `root/avx512` (~10 min on 2 cores); None
    where this CPU lacks a flag (the build could not run here) or it is already there. Written beside, then renamed
    into place."""
    missing = AVX512_FLAGS - cpu_flags()
    if missing:
        log.info("no AVX-512 llama.cpp build: this CPU lacks %s", ", ".join(sorted(missing)))
        return None
    version = bindings_version()
    if version is None:
        raise ConfigError("the AVX-512 build pairs with the installed llama-cpp-python: make llama-cpp-wheel first")
    dest = root / "avx512"
    if not force and any(b.name == "avx512" for b in installed_builds(root, version)):
        log.info("the AVX-512 llama.cpp build is already in %s", dest)
        return None
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-avx512-", dir=root) as work:
        env = {**os.environ, "CMAKE_ARGS": AVX512_CMAKE_ARGS,
               "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")}
        # --no-binary/--no-cache-dir: pip would otherwise reuse the portable wheel it has cached under the same name
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary",
                        "llama-cpp-python", "-w", work, f"llama-cpp-python=={version}"], env=env, check=True)
        staged = Path(work) / "avx512"
        with zipfile.ZipFile(next(Path(work).glob("llama_cpp_python-*.whl"))) as wheel:
            for member in wheel.namelist():
                if member.startswith("llama_cpp/lib/") and not member.endswith("/"):
                    target = staged / "lib" / Path(member).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(wheel.read(member))
        install_staged(staged, dest, version, AVX512_CMAKE_ARGS, AVX512_FLAGS)
    log.info("AVX-512 llama.cpp build in %s", dest)
    return dest


def install_staged(staged: Path, dest: Path, version: str, cmake_args: str, needs: frozenset[str]) -> None:
    """Write `build.json` (what the build pairs with and the CPU flags it needs) into a finished build staged beside
    `dest`, then rename it into place: a stopped build never leaves a folder that looks complete."""
    (staged / "build.json").write_text(json.dumps({"version": version, "cmake_args": cmake_args,
                                                   "needs": sorted(needs)}, indent=1), encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    staged.rename(dest)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generation.llama_cpp_build", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("show", "build-avx512"))
    parser.add_argument("--force", action="store_true", help="build again even if the build is there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.action == "build-avx512":
        build_avx512(builds_root(), force=args.force)
    else:
        build = select_build()
        log.info("%s (%s)", build.name, build.lib_dir or "the installed wheel's libraries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
