"""The in-process transformers backend on the tiny real model; stop-string handling."""

from __future__ import annotations

import logging

import pytest

from core import hardware
from core.protocols import GenerationParams, Message
from generation.stops import cut_at_stop, stream_until_stop
from generation.transformers_gen import TransformersGenerator

MESSAGES = [Message("system", "你是法律助理。"), Message("user", "盗窃罪怎么处罚？")]


@pytest.fixture(scope="module")
def tiny_generator(tiny_lm_dir):
    return TransformersGenerator(str(tiny_lm_dir), threads=1).load()


def test_generate_and_stream_agree_when_greedy(tiny_generator):
    params = GenerationParams(max_new_tokens=12, temperature=0.0)
    assert "".join(tiny_generator.stream(MESSAGES, params)) == tiny_generator.generate(MESSAGES, params)


def test_sampling_produces_text_and_respects_the_budget(tiny_generator):
    import torch

    torch.manual_seed(0)
    text = tiny_generator.generate(MESSAGES, GenerationParams(max_new_tokens=8, temperature=1.0))
    assert text.strip()
    assert len(tiny_generator._tokenizer(text)["input_ids"]) <= 10  # re-tokenising may merge / split a little


def test_stream_can_be_abandoned(tiny_generator):
    stream = tiny_generator.stream(MESSAGES, GenerationParams(max_new_tokens=200, temperature=1.0))
    next(stream)
    stream.close()  # stops the worker thread and frees the lock
    assert tiny_generator.generate(MESSAGES, GenerationParams(max_new_tokens=2)) is not None


def test_stop_strings():
    assert cut_at_stop("答案。\n\n问题", ["\n\n"]) == ("答案。", True)
    pieces = ["答", "案。\n", "\n问题"]
    assert "".join(stream_until_stop(pieces, ["\n\n"])) == "答案。"
    assert "".join(stream_until_stop(pieces, [])) == "答案。\n\n问题"


@pytest.mark.parametrize(("native", "dtype"), [(False, "float32"), (True, "bfloat16")])
def test_auto_precision_follows_the_cpu_and_is_logged(tiny_lm_dir, monkeypatch, caplog, native, dtype):
    # the CPU is injected: the test means the same on any machine
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(hardware, "cuda_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="generation.transformers_gen"):
        generator = TransformersGenerator(str(tiny_lm_dir), threads=1).load()
    assert str(generator._model.dtype) == f"torch.{dtype}" and generator._model.device.type == "cpu"
    assert f"precision {'bf16' if native else 'fp32'} (auto: this CPU has " in caplog.text
    assert generator.generate(MESSAGES, GenerationParams(max_new_tokens=2)) is not None
