"""llama.cpp's own `llama-server`, built once from the llama-cpp-python sdist the project already pins, for the RAGAS
judge (eval/answer_judge.py).

Why a second server: llama-cpp-python's server reads every prompt from the first token that differs from the
previous request, and its prompt cache copies every token's logits (it grew to 21 GB and was killed). A RAGAS answer
is ~11 judge requests whose instructions and examples repeat from row to row; `llama-server --cache-ram` keeps those
prompt states (KV only) and reads them once. The vendored llama.cpp inside the sdist carries the server's source, so
this needs no other download than the sdist pip fetches from the registry.

`make judge-server` builds it under `$DOSSIER_CACHE_DIR/llama-cpp/server/<name>/` (~5 min on 2 cores): AVX-512 (no
AMX) where this CPU has every AVX-512 flag the library build uses, else the portable flags; `build.json` lists the
CPU flags it needs, so a disk that moves to another CPU never runs a binary compiled for instructions it lacks.
`$DOSSIER_JUDGE_SERVER` names a `llama-server` binary to use instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from core.errors import ConfigError
from core.hardware import cpu_flags
from generation.llama_cpp_build import AVX512_CMAKE_ARGS, AVX512_FLAGS, bindings_version, builds_root, install_staged

log = logging.getLogger(__name__)

SERVER_ENV = "DOSSIER_JUDGE_SERVER"
BINARY = "llama-server"
# the Makefile's LLAMA_CMAKE_ARGS: what the portable wheel is compiled with
PORTABLE_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
                       "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")
PORTABLE_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "bmi2"})
BUILD_ONLY = "-DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"


def servers_root() -> Path:
    return builds_root() / "server"


def server_binary(root: Path | None = None, flags: frozenset[str] | None = None) -> Path | None:
    """The `llama-server` to run: `$DOSSIER_JUDGE_SERVER`, else the first build under `root` whose CPU flags this
    CPU has, else None (the caller falls back to llama-cpp-python's server)."""
    named = os.environ.get(SERVER_ENV)
    if named:
        path = Path(named)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ConfigError(f"{SERVER_ENV}={named}: not an executable file; unset it or make judge-server")
        return path
    flags = cpu_flags() if flags is None else flags
    for manifest in sorted((root or servers_root()).glob("*/build.json")):
        binary = manifest.parent / "bin" / BINARY
        try:
            needs = frozenset(json.loads(manifest.read_text(encoding="utf-8")).get("needs", ()))
        except (OSError, ValueError) as err:
            log.warning("ignoring llama-server build %s: unreadable build.json (%s)", manifest.parent, err)
            continue
        if binary.is_file() and needs <= flags:
            return binary
    return None


def build_flavour(flags: frozenset[str]) -> tuple[str, str, frozenset[str]]:
    """(name, cmake args, CPU flags it needs) for the fastest build this CPU runs."""
    if AVX512_FLAGS <= flags:
        return "avx512", AVX512_CMAKE_ARGS, AVX512_FLAGS | PORTABLE_FLAGS
    if PORTABLE_FLAGS <= flags:
        return "portable", PORTABLE_CMAKE_ARGS, PORTABLE_FLAGS
    raise ConfigError(f"no llama-server build for this CPU: it lacks {', '.join(sorted(PORTABLE_FLAGS - flags))}")


def build_server(root: Path, version: str, *, force: bool = False) -> Path | None:
    """Compile `llama-server` from llama-cpp-python `version`'s sdist into `root/<flavour>/bin/`; None when it is
    already there. Staged beside and renamed into place, so a stopped build leaves nothing that looks complete."""
    name, cmake_args, needs = build_flavour(cpu_flags())
    dest = root / name
    if not force and (dest / "build.json").is_file() and (dest / "bin" / BINARY).is_file():
        log.info("llama-server is already built in %s", dest)
        return None
    if shutil.which("cmake") is None:
        raise ConfigError("building llama-server needs cmake (apt-get install cmake)")
    root.mkdir(parents=True, exist_ok=True)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="llama-server-", dir=root) as work_dir:
        work = Path(work_dir)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", str(work),
                        f"llama-cpp-python=={version}"], check=True)
        with tarfile.open(next(work.glob("llama_cpp_python-*.tar.gz"))) as sdist:
            sdist.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build = work / "build"
        subprocess.run(["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                        *cmake_args.split(), *BUILD_ONLY.split()], check=True)
        subprocess.run(["cmake", "--build", str(build), "--target", BINARY, "-j", jobs], check=True)
        staged = work / name
        (staged / "bin").mkdir(parents=True)
        for built in (build / "bin").iterdir():  # the binary and the shared libraries it links
            if built.name == BINARY or ".so" in built.name:
                shutil.copy2(built, staged / "bin" / built.name, follow_symlinks=False)  # links stay links
        install_staged(staged, dest, version, cmake_args, needs)
    log.info("llama-server built in %s", dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m generation.llama_server_build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=None, help="the llama-cpp-python sdist to build (default: the installed)")
    parser.add_argument("--force", action="store_true", help="build again even if the build is there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    version = args.version or bindings_version()
    if version is None:
        raise SystemExit("no llama-cpp-python installed to take the version from: make llama-cpp-wheel, or --version")
    build_server(servers_root(), version, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
