"""`--model base | tuned | PATH` and the tuned adapter a domain ships: the base model only when asked for, a missing
or changed adapter an error naming the fix, and an adapter applied by the backend (the tiny model, transformers)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.hashing import sha256_file
from models.generator_adapter import shipped_adapter
from models.peft_lora import AdapterError
from rag.build_generation import build_generator
from rag.generator_choice import generator_label, with_generator


@pytest.fixture(scope="module")
def tiny_adapter(tiny_lm_dir, tmp_path_factory) -> Path:
    """A peft LoRA on the tiny model's q / v projections, with B non-zero so that it changes the weights."""
    from tiny_models import build_tiny_lora

    return build_tiny_lora(tiny_lm_dir, tmp_path_factory.mktemp("adapter"))


def _shipping(cfg, adapter: Path, sha256: str = ""):
    return replace(cfg, models=replace(cfg.models, generator_adapter=str(adapter), generator_adapter_sha256=sha256))


def test_base_clears_the_adapter_and_tuned_needs_one(legal_cfg, tiny_adapter) -> None:
    shipping = _shipping(legal_cfg, tiny_adapter)
    assert with_generator(shipping, "base").models.generator_adapter == ""
    assert generator_label(with_generator(shipping, "base")) == "base"
    assert generator_label(_shipping(legal_cfg, Path("/runs/sft_legal_rag/adapter"))) == "sft_legal_rag"
    assert generator_label(_shipping(legal_cfg, Path("models/generator-lora"))) == "generator-lora"
    assert with_generator(shipping, "tuned") is shipping and with_generator(shipping, None) is shipping
    with pytest.raises(ConfigError, match=r"ships no tuned generator.*dossier train sft.*--model base"):
        with_generator(legal_cfg, "tuned")


def test_a_path_is_an_adapter_dir_or_a_merged_model_dir(legal_cfg, tiny_adapter, tiny_lm_dir, tmp_path) -> None:
    adapted = with_generator(legal_cfg, str(tiny_adapter))
    assert adapted.models.generator_adapter == str(tiny_adapter.resolve())
    assert adapted.models.generator == legal_cfg.models.generator  # the adapter goes on the domain's base model
    merged = with_generator(legal_cfg, str(tiny_lm_dir))
    assert merged.models.generator == str(tiny_lm_dir.resolve()) and merged.models.generator_adapter == ""
    with pytest.raises(ConfigError, match="not base, tuned, a registry generator or a model path"):
        with_generator(legal_cfg, str(tmp_path / "nowhere"))


def test_another_gguf_is_what_the_llama_cpp_backend_loads(legal_cfg, tiny_lm_dir, tmp_path) -> None:
    """`--model DIR` of a GGUF once set only the transformers field, and llama.cpp answered with the domain's own
    GGUF under the other model's name. Each backend must load the chosen model or refuse it."""
    gguf_dir = tmp_path / "other-gguf"
    gguf_dir.mkdir()
    (gguf_dir / "model.gguf").write_bytes(b"GGUF")  # built, not loaded: the form is read from the files
    for choice in (gguf_dir, gguf_dir / "model.gguf"):
        chosen = with_generator(legal_cfg, str(choice))
        assert chosen.models.generator_gguf == str(choice.resolve()) and chosen.models.generator_adapter == ""
        assert build_generator(chosen, "llama-cpp").gguf_path == str(gguf_dir.resolve() / "model.gguf")
        assert generator_label(chosen, str(choice)) == ("other-gguf" if choice.is_dir() else "model")
        with pytest.raises(ConfigError, match=r"is a GGUF model, the transformers backend loads a transformers dir"):
            build_generator(chosen, "transformers")
    merged = with_generator(legal_cfg, str(tiny_lm_dir))
    with pytest.raises(ConfigError, match=r"is a transformers model, the llama-cpp backend loads a GGUF"):
        build_generator(merged, "llama-cpp")


def test_an_adapter_answers_on_the_registry_model_it_was_trained_on(legal_cfg, tiny_adapter, tmp_path) -> None:
    """The GPU recipes train on the 1.5B model: its adapter must not be put on the domain's 0.5B one."""
    import shutil

    adapter = shutil.copytree(tiny_adapter, tmp_path / "adapter-1.5b")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/somewhere/.cache/models/qwen2.5-coder-1.5b-instruct"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    models = with_generator(legal_cfg, str(adapter)).models
    assert (models.generator, models.generator_gguf) == ("qwen2.5-coder-1.5b-instruct",
                                                         "qwen2.5-coder-1.5b-instruct-gguf")
    assert models.generator_adapter == str(adapter.resolve())


def test_a_registry_generator_names_both_of_its_forms(legal_cfg) -> None:
    for name in ("qwen2.5-coder-1.5b-instruct-gguf", "qwen2.5-coder-1.5b-instruct"):
        models = with_generator(legal_cfg, name).models
        assert (models.generator, models.generator_gguf) == ("qwen2.5-coder-1.5b-instruct",
                                                             "qwen2.5-coder-1.5b-instruct-gguf")
        assert models.generator_adapter == ""
        assert generator_label(with_generator(legal_cfg, name), name) == name  # never "base": its own run dir
    with pytest.raises(ConfigError, match="an embedder, not a generator"):
        with_generator(legal_cfg, "embeddinggemma-300m")


def test_a_missing_or_changed_adapter_is_an_error_naming_the_fix(legal_cfg, tiny_adapter, tmp_path) -> None:
    weights = tiny_adapter / "adapter_model.safetensors"
    assert shipped_adapter(_shipping(legal_cfg, tiny_adapter, sha256_file(weights))).sha256 == sha256_file(weights)
    with pytest.raises(AdapterError, match=r"is missing.*git checkout.*dossier train sft.*--model base"):
        shipped_adapter(_shipping(legal_cfg, tmp_path / "gone"))
    with pytest.raises(AdapterError, match=r"not the pinned 000000000000.*changed or damaged.*--model base"):
        shipped_adapter(_shipping(legal_cfg, tiny_adapter, "0" * 64))
    with pytest.raises(AdapterError):  # never a silent fall-back: building the generator fails the same way
        build_generator(_shipping(legal_cfg, tiny_adapter, "0" * 64))


def test_the_transformers_backend_answers_with_the_adapter_merged(legal_cfg, tiny_adapter) -> None:
    import torch

    config = json.loads((tiny_adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    base = build_generator(legal_cfg, "transformers").load()
    tuned = build_generator(_shipping(legal_cfg, tiny_adapter), "transformers").load()
    assert "+legal-rag-lora@" in tuned.name and "+" not in base.name.removeprefix("transformers:")
    q_base = base._model.model.layers[0].self_attn.q_proj.weight
    q_tuned = tuned._model.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q_base, q_tuned)  # merged into the weights: decoding runs at the base model's speed
    assert torch.equal(base._model.model.layers[0].mlp.up_proj.weight, tuned._model.model.layers[0].mlp.up_proj.weight)


def test_the_reply_cache_identity_tells_base_and_each_adapter_apart(legal_cfg, tiny_adapter, tmp_path) -> None:
    """Eval answers and `train preferences` key their reply caches on it: a tuned run must never read the base
    model's replies, nor a retrained adapter an older one's."""
    from rag.build_generation import generator_identity

    base = generator_identity(legal_cfg, "transformers")
    tuned = generator_identity(_shipping(legal_cfg, tiny_adapter), "transformers")
    assert tuned.startswith(base) and tuned != base
    assert tuned.endswith(sha256_file(tiny_adapter / "adapter_model.safetensors"))
    assert generator_identity(legal_cfg, "transformers") == base  # the same files: the same key


def test_a_fetched_registry_model_is_keyed_by_its_pinned_hash_not_its_file_times(legal_cfg, tmp_path,
                                                                                  monkeypatch) -> None:
    """A reply cache kept in the repository must still answer after the model is fetched again on another machine:
    the fetch writes new file times, the content (checked against the pin) is the same."""
    from models.registry import COMPLETE_MARKER, MODELS
    from rag.build_generation import generator_identity

    name = legal_cfg.models.generator_gguf
    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path))
    model = tmp_path / "models" / name
    model.mkdir(parents=True)
    (model / MODELS[name].checked_file).write_bytes(b"gguf")
    (model / COMPLETE_MARKER).write_text("{}", encoding="utf-8")
    first = generator_identity(legal_cfg, "llama-cpp")
    for path in model.iterdir():
        os.utime(path, (1_000_000, 1_000_000))  # fetched again, later
    assert generator_identity(legal_cfg, "llama-cpp") == first
    assert first.endswith(f"sha256:{MODELS[name].sha256}")


def test_a_run_trained_on_top_of_an_adapter_answers_with_both(legal_cfg, tiny_adapter, tiny_lm_dir, tmp_path,
                                                              monkeypatch) -> None:
    """A second SFT round or DPO merges the shipped adapter into the base before training, so its own adapter is a
    delta on that model. `--model RUN/adapter` must answer with the two composed (as `dossier train ship` ships
    them), never with the delta alone on the bare base model: that silently measured the wrong model."""
    from tiny_models import build_tiny_lora

    from models.lora_compose import compose
    from models.peft_lora import read_lora, read_safetensors

    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "sft-round2"
    delta = build_tiny_lora(tiny_lm_dir, run / "adapter", modules=("q_proj", "o_proj"), seed=1)
    (run / "config.json").write_text(json.dumps({"recipe": {"train": {"init_adapter": str(tiny_adapter)}}}))
    stacked = Path(with_generator(legal_cfg, str(delta)).models.generator_adapter)
    assert stacked != delta.resolve() and stacked.is_relative_to(tmp_path / "cache")
    assert generator_label(with_generator(legal_cfg, str(delta))).startswith("sft-round2-stacked-")
    expected = compose(read_lora(tiny_adapter), read_lora(delta))
    written = read_safetensors(stacked / "adapter_model.safetensors")
    assert set(written) == set(expected) and all((written[k] == expected[k]).all() for k in expected)
    assert with_generator(legal_cfg, str(delta)).models.generator_adapter == str(stacked)  # built once, reused
    (run / "config.json").write_text(json.dumps({"recipe": {"train": {"init_adapter": str(tmp_path / "gone")}}}))
    with pytest.raises(AdapterError, match=r"trained on top of .*gone.*a delta on a model nobody serves"):
        with_generator(legal_cfg, str(delta))
