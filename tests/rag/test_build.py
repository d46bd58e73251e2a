"""build_generator's one `match`, its overrides, and a pipeline for every shipped domain."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fakes import fixed_retriever

from core.errors import ConfigError
from domains import available_domains, load_domain
from generation.llama_cpp_gen import LlamaCppGenerator
from generation.openai_http import OpenAIHttpGenerator
from generation.transformers_gen import TransformersGenerator
from generation.vllm_gen import VllmGenerator
from rag.build import build_pipeline
from rag.build_generation import BACKEND_ENV, build_generator, chosen_backend


def tiny_cfg(name: str, tiny_lm_dir, backend: str = "transformers"):
    cfg = load_domain(name)
    gguf = tiny_lm_dir / "model.gguf"  # a path that exists is enough: nothing is loaded here
    gguf.touch()
    # the domain's shipped adapter was trained on the real 0.5B model and cannot apply to the tiny one
    models = replace(cfg.models, generator=str(tiny_lm_dir), generator_gguf=str(gguf), generator_adapter="",
                     generator_adapter_sha256="")
    return replace(cfg, models=models, generation=replace(cfg.generation, backend=backend))


@pytest.mark.parametrize(
    ("backend", "cls"),
    [("transformers", TransformersGenerator), ("llama-cpp", LlamaCppGenerator),
     ("openai-http", OpenAIHttpGenerator), ("vllm", VllmGenerator)],
)
def test_each_backend_builds_without_loading(tiny_lm_dir, backend, cls):
    assert isinstance(build_generator(tiny_cfg("legal", tiny_lm_dir, backend)), cls)


def test_flag_beats_environment_beats_domain_toml(tiny_lm_dir, monkeypatch):
    cfg = tiny_cfg("legal", tiny_lm_dir)
    monkeypatch.setenv(BACKEND_ENV, "openai-http")
    assert chosen_backend(cfg) == "openai-http"
    assert chosen_backend(cfg, "llama-cpp") == "llama-cpp"
    monkeypatch.delenv(BACKEND_ENV)
    assert chosen_backend(cfg) == "transformers"
    with pytest.raises(ConfigError, match="openai-http"):
        chosen_backend(cfg, "ollama")


def test_auto_picks_openvino_only_where_the_cpu_computes_bf16_and_openvino_is_there(tiny_lm_dir, monkeypatch):
    from core import hardware
    from rag.build_generation import auto_backend

    assert auto_backend(native_bf16=True, openvino=True) == "openvino"
    assert auto_backend(native_bf16=False, openvino=True) == "llama-cpp"
    assert auto_backend(native_bf16=True, openvino=False) == "llama-cpp"
    cfg = tiny_cfg("legal", tiny_lm_dir, "auto")
    for native, backend in ((True, "openvino"), (False, "llama-cpp")):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda native=native: native)
        assert chosen_backend(cfg) == backend
    assert chosen_backend(cfg, "transformers") == "transformers"  # a flag still wins


@pytest.mark.parametrize("domain", available_domains())
def test_every_shipped_domain_builds_its_pipeline(tiny_lm_dir, domain):
    pipeline = build_pipeline(tiny_cfg(domain, tiny_lm_dir), retriever=fixed_retriever([]), load=False)
    assert pipeline.domain == domain and pipeline.cfg.prompts.answer
    assert pipeline.answer("?").abstained  # nothing retrieved: say so, do not guess


def test_llama_cpp_backend_without_its_wheel_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    from core.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as on a machine where the wheel was never built
    with pytest.raises(MissingDependency, match="make llama-cpp-wheel.*--backend transformers"):
        LlamaCppGenerator(str(tmp_path / "model.gguf")).load()
