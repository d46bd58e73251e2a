"""generation/llama_cpp_build.py: which llama.cpp libraries a process loads.

The choice is a pure function of the requested build, the CPU's flags and the builds on disk (tested with flags
injected); `select_build` is run in a child process, where it must set $LLAMA_CPP_LIB_PATH before llama_cpp is
imported. Where an extra build is installed and fits this CPU, a child loads it for real and greedy-decodes the
scripted tiny GGUF through `LlamaCppGenerator`: same reply as the portable wheel, and the mapped library is the
build's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.hardware import cpu_flags
from generation.llama_cpp_build import (
    AVX512_FLAGS,
    PORTABLE,
    LlamaBuild,
    bindings_version,
    builds_root,
    choose_build,
    installed_builds,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "故意杀人的，处死刑或者十年以上有期徒刑[1]。"  # what conftest.py's scripted GGUF answers
AVX512 = LlamaBuild("avx512", Path("/builds/avx512/lib"), AVX512_FLAGS)


def fake_build(root: Path, name: str, needs: list[str], version: str = "0.3.36", lib: bool = True) -> Path:
    folder = root / name
    (folder / "lib").mkdir(parents=True)
    if lib:
        (folder / "lib" / "libllama.so").write_bytes(b"\x7fELF")
    (folder / "build.json").write_text(json.dumps({"version": version, "needs": needs}), encoding="utf-8")
    return folder


def test_auto_takes_the_avx512_build_only_where_the_cpu_has_every_flag() -> None:
    assert choose_build("auto", AVX512_FLAGS | {"sse4_2"}, [AVX512]) == AVX512
    assert choose_build("auto", AVX512_FLAGS - {"avx512_vnni"}, [AVX512]) == PORTABLE  # e.g. an AVX2-only EPYC
    assert choose_build("auto", AVX512_FLAGS, []) == PORTABLE
    assert choose_build("portable", AVX512_FLAGS, [AVX512]) == PORTABLE


def test_a_named_build_that_cannot_run_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="avx512_bf16"):
        choose_build("avx512", AVX512_FLAGS - {"avx512_bf16"}, [AVX512])
    with pytest.raises(ConfigError, match="make llama-cpp-avx512"):
        choose_build("avx512", AVX512_FLAGS, [])
    with pytest.raises(ConfigError, match="auto, portable, avx512"):
        choose_build("fastest", AVX512_FLAGS, [AVX512])


def test_only_complete_builds_of_the_installed_version_count(tmp_path: Path) -> None:
    fake_build(tmp_path, "avx512", sorted(AVX512_FLAGS))
    fake_build(tmp_path, "old", [], version="0.0.1")  # the ctypes bindings of 0.3.36 would misread its libraries
    fake_build(tmp_path, "half", [], lib=False)  # a build stopped before its libraries were copied
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "build.json").write_text("{", encoding="utf-8")
    assert installed_builds(tmp_path, "0.3.36") == [LlamaBuild("avx512", tmp_path / "avx512" / "lib", AVX512_FLAGS)]
    # without bindings installed there is nothing to match: every complete build counts (none will be loaded)
    assert [b.name for b in installed_builds(tmp_path, None)] == ["avx512", "old"]


def select_in_child(cache: Path, **env: str) -> dict:
    child = ("import json, os, sys; from generation.llama_cpp_build import select_build; b = select_build(); "
             "print(json.dumps({'name': b.name, 'lib': os.environ.get('LLAMA_CPP_LIB_PATH'), "
             "'imported': 'llama_cpp' in sys.modules}))")
    clean = {k: v for k, v in os.environ.items() if k not in ("LLAMA_CPP_LIB_PATH", "DOSSIER_LLAMA_BUILD")}
    done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=True,
                          env={**clean, "DOSSIER_CACHE_DIR": str(cache), **env})
    return json.loads(done.stdout)


def test_select_build_points_llama_cpp_at_the_chosen_libraries_before_importing_it(tmp_path: Path) -> None:
    version = bindings_version() or "0.3.36"  # what the child will match against (anything without bindings)
    fits = fake_build(tmp_path / "fits" / "llama-cpp", "avx512", [], version)  # needs nothing: every CPU runs it
    assert select_in_child(tmp_path / "fits") == {"name": "avx512", "lib": str(fits / "lib"), "imported": False}
    fake_build(tmp_path / "unfit" / "llama-cpp", "avx512", ["no_such_cpu_flag"], version)
    assert select_in_child(tmp_path / "unfit") == {"name": "portable", "lib": None, "imported": False}
    assert select_in_child(tmp_path / "fits", DOSSIER_LLAMA_BUILD="portable")["lib"] is None
    # the user's own LLAMA_CPP_LIB_PATH wins
    assert select_in_child(tmp_path / "fits", LLAMA_CPP_LIB_PATH="/opt/llama")["lib"] == "/opt/llama"


def generate_in_child(gguf: Path, build: str) -> dict:
    child = ("import json, sys; from core.protocols import GenerationParams, Message; "
             "from generation.llama_cpp_gen import LlamaCppGenerator; "
             "g = LlamaCppGenerator(sys.argv[1], prompt_cache_bytes=0).load(); "
             "reply = g.generate([Message('user', '故意杀人怎么判？')], GenerationParams(max_new_tokens=40, "
             "temperature=0.0)); "
             "maps = [line.split()[-1] for line in open('/proc/self/maps') if 'libllama' in line]; "
             "print(json.dumps({'reply': reply, 'libllama': sorted(set(maps))}))")
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_CPP_LIB_PATH"}
    done = subprocess.run([sys.executable, "-c", child, str(gguf)], cwd=REPO, capture_output=True, text=True,
                          env={**env, "DOSSIER_LLAMA_BUILD": build})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_build_this_cpu_runs_answers_like_the_portable_one(scripted_gguf: Path) -> None:
    extra = [b for b in installed_builds(builds_root(), bindings_version()) if b.needs <= cpu_flags()]
    if not extra:
        pytest.skip("no extra llama.cpp build fits this CPU (make llama-cpp-avx512 on an AVX-512 machine)")
    portable = generate_in_child(scripted_gguf, "portable")
    assert portable["reply"] == SCRIPT and all("site-packages" in path for path in portable["libllama"])
    for build in extra:
        loaded = generate_in_child(scripted_gguf, build.name)
        assert loaded["reply"] == SCRIPT
        assert loaded["libllama"] and all(path.startswith(str(build.lib_dir)) for path in loaded["libllama"])
