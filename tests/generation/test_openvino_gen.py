"""The OpenVINO backend on the tiny real model: its step graph answers token for token like transformers (f32, with
and without an adapter merged), streams what it generates, samples within the budget, keeps its graph in the cache
keyed by the adapter, and picks bf16 by the CPU."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from core import hardware
from core.errors import ConfigError
from core.protocols import GenerationParams, Message
from generation.openvino_gen import OpenVINOGenerator, next_token
from generation.openvino_step import step_dir, step_ir
from generation.transformers_gen import TransformersGenerator
from rag.build_generation import build_generator

pytest.importorskip("openvino")

MESSAGES = [Message("system", "你是法律助理。"), Message("user", "盗窃罪怎么处罚？醉驾呢？")]
GREEDY = GenerationParams(max_new_tokens=16, repetition_penalty=1.1)


@pytest.fixture(autouse=True, scope="module")
def _graphs_in_a_temporary_cache(tmp_path_factory):
    """The tiny model's step graphs go to a cache of their own, not the model cache real runs share."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOSSIER_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))
        yield


@pytest.fixture(scope="module")
def tiny_adapter(tiny_lm_dir, tmp_path_factory):
    from tiny_models import build_tiny_lora

    return build_tiny_lora(tiny_lm_dir, tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="module")
def f32_generator(tiny_lm_dir):
    return OpenVINOGenerator(str(tiny_lm_dir), threads=1, precision="fp32", weights="f32").load()


@pytest.mark.parametrize("adapted", [False, True])
def test_greedy_reply_is_transformers_token_for_token(tiny_lm_dir, tiny_adapter, adapted):
    adapter = str(tiny_adapter) if adapted else ""
    reference = TransformersGenerator(str(tiny_lm_dir), threads=1, precision="fp32", device="cpu",
                                      adapter_path=adapter).load()
    generator = OpenVINOGenerator(str(tiny_lm_dir), threads=1, precision="fp32", weights="f32",
                                  adapter_path=adapter).load()
    for params in (GREEDY, replace(GREEDY, repetition_penalty=1.0)):
        expected = reference.generate(MESSAGES, params)
        assert expected and generator.generate(MESSAGES, params) == expected
    if adapted:  # the adapter was merged into the graph: it answers otherwise than the base model
        base = OpenVINOGenerator(str(tiny_lm_dir), threads=1, precision="fp32", weights="f32").load()
        assert base.generate(MESSAGES, GREEDY) != generator.generate(MESSAGES, GREEDY)
        assert generator.name.endswith(f"+{tiny_adapter}")


def test_stream_joins_to_the_reply_and_stops_at_a_stop_string(f32_generator):
    reply = f32_generator.generate(MESSAGES, GREEDY)
    assert "".join(f32_generator.stream(MESSAGES, GREEDY)) == reply
    stop = reply[3:5]
    cut = f32_generator.generate(MESSAGES, replace(GREEDY, stop=(stop,)))
    assert cut == reply[: reply.index(stop)]


def test_a_new_question_reuses_the_shared_prefix_and_answers_as_from_scratch(tiny_lm_dir, f32_generator):
    other = [MESSAGES[0], Message("user", "正当防卫的条件是什么？")]
    fresh = OpenVINOGenerator(str(tiny_lm_dir), threads=1, precision="fp32", weights="f32").load()
    expected = fresh.generate(other, GREEDY)
    f32_generator.generate(MESSAGES, GREEDY)
    held = list(f32_generator._held)
    prompt = f32_generator._prompt_ids(other)
    assert 0 < f32_generator._reuse_prefix(prompt) < len(held)  # the system prompt's K/V kept, the rest cut
    f32_generator._held = []  # as it was before: the next call starts from nothing
    f32_generator.generate(MESSAGES, GREEDY)
    assert f32_generator.generate(other, GREEDY) == expected
    assert f32_generator.generate(other, GREEDY) == expected  # the whole prompt held: all but its last token kept


def test_sampling_stays_within_the_budget_and_an_abandoned_stream_frees_the_generator(f32_generator):
    params = GenerationParams(max_new_tokens=6, temperature=0.9, top_p=0.9)
    assert isinstance(f32_generator.generate(MESSAGES, params), str)
    # the budget counts the model's tokens (re-tokenising sampled text can split it differently)
    for _ in range(5):
        assert len(list(f32_generator._tokens(f32_generator._prompt_ids(MESSAGES), params))) <= 6
    stream = f32_generator.stream(MESSAGES, GenerationParams(max_new_tokens=200, temperature=1.0))
    next(stream)
    stream.close()  # releases the lock and the state
    assert f32_generator.generate(MESSAGES, GREEDY) == f32_generator.generate(MESSAGES, GREEDY)


def test_next_token_follows_transformers_rules():
    rng = np.random.default_rng(0)
    logits = np.array([2.0, 1.9, -1.0, -1.05], dtype=np.float32)
    # the penalty divides a positive score and multiplies a negative one, for every id already seen
    assert next_token(logits.copy(), [0], GenerationParams(repetition_penalty=1.1), rng) == 1
    assert next_token(logits.copy(), [0, 1, 2], GenerationParams(repetition_penalty=3.0), rng) == 0
    # top-p keeps the smallest set reaching p: here token 0 alone
    peaked = np.array([5.0, 0.0, 0.0, 0.0], dtype=np.float32)
    draws = {next_token(peaked.copy(), [], GenerationParams(temperature=1.0, top_p=0.5), rng) for _ in range(50)}
    assert draws == {0}
    flat = np.zeros(4, dtype=np.float32)
    draws = {next_token(flat.copy(), [], GenerationParams(temperature=1.0), rng) for _ in range(200)}
    assert draws == {0, 1, 2, 3}


def test_the_graph_is_built_once_per_model_and_adapter(tiny_lm_dir, tiny_adapter):
    base = step_ir(str(tiny_lm_dir), weights="int8")
    assert base.is_file() and step_ir(str(tiny_lm_dir), weights="int8") == base
    adapted = step_ir(str(tiny_lm_dir), adapter_path=str(tiny_adapter), weights="int8")
    assert adapted.parent != base.parent
    assert not base.parent.with_name(base.parent.name + ".building").exists()
    assert step_dir(str(tiny_lm_dir), "", "f32") != base.parent
    # int8 and int4 weights answer too (not token for token: the weights are rounded)
    for weights in ("int8", "int4"):
        generator = OpenVINOGenerator(str(tiny_lm_dir), threads=1, precision="fp32", weights=weights).load()
        assert generator.generate(MESSAGES, GREEDY)
    with pytest.raises(ConfigError, match="int2"):
        step_ir(str(tiny_lm_dir), weights="int2")


def test_a_damaged_graph_is_an_error_naming_the_fix(tiny_lm_dir, tmp_path):
    from core.errors import DossierError
    from generation.openvino_gen import stateful_request

    ir = step_ir(str(tiny_lm_dir), weights="int8")
    damaged = tmp_path / "step.xml"
    damaged.write_text(ir.read_text()[:200])
    with pytest.raises(DossierError, match="delete that folder"):
        stateful_request(damaged, 1, "f32")


@pytest.mark.parametrize(("native", "compute"), [(False, "fp32"), (True, "bf16")])
def test_auto_precision_follows_the_cpu_and_is_logged(tiny_lm_dir, monkeypatch, caplog, native, compute):
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.INFO, logger="generation.openvino_gen"):
        generator = OpenVINOGenerator(str(tiny_lm_dir), threads=1, weights="f32").load()
    assert f"{compute} compute (auto: this CPU has " in caplog.text
    assert generator.generate(MESSAGES, GenerationParams(max_new_tokens=2)) is not None


def test_the_domain_builds_it_with_its_adapter_and_prefill_threads(tiny_lm_dir, tiny_adapter):
    from core.hashing import sha256_file
    from domains import load_domain

    legal = load_domain("legal")
    cfg = replace(legal, models=replace(
        legal.models, generator=str(tiny_lm_dir), generator_adapter=str(tiny_adapter),
        generator_adapter_sha256=sha256_file(tiny_adapter / "adapter_model.safetensors")))
    generator = build_generator(cfg, "openvino")
    assert isinstance(generator, OpenVINOGenerator) and generator._request is None  # built, not loaded
    assert generator.adapter_path == str(tiny_adapter)
    assert generator.name.startswith("openvino:") and "legal-rag-lora@" in generator.name
    assert generator.threads == max(cfg.generation.threads, cfg.generation.prefill_threads)
    assert generator.weights == "int8"


def test_the_weights_come_from_the_environment_over_domain_toml(monkeypatch):
    from domains import load_domain
    from rag.build_generation import OPENVINO_WEIGHTS_ENV, openvino_weights

    cfg = load_domain("legal")
    assert openvino_weights(cfg) == cfg.generation.openvino_weights == "int8"
    monkeypatch.setenv(OPENVINO_WEIGHTS_ENV, "int4")
    assert openvino_weights(cfg) == "int4"
    monkeypatch.setenv(OPENVINO_WEIGHTS_ENV, "int3")
    with pytest.raises(ConfigError, match="DOSSIER_OPENVINO_WEIGHTS"):
        openvino_weights(cfg)
