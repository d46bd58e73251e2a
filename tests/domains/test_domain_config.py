from pathlib import Path

import pytest

from core.errors import ConfigError
from domains import available_domains, load_domain, load_domain_file


def test_three_domains_ship() -> None:
    assert available_domains() == ["finance", "legal", "medical"]


@pytest.mark.parametrize("name", ["legal", "medical", "finance"])
def test_every_shipped_domain_loads_and_its_files_exist(name: str) -> None:
    cfg = load_domain(name)
    assert cfg.name == name
    assert cfg.corpus, "a domain needs a corpus"
    for source in cfg.corpus:
        assert cfg.path(source.path).exists(), source.path
    for evalset in cfg.evalsets:
        assert cfg.path(evalset.path).exists(), evalset.path
    assert cfg.evalset(cfg.evalsets[0].name) is cfg.evalsets[0]
    assert (cfg.root / "data" / "PROVENANCE.md").is_file()


@pytest.mark.parametrize("name", ["legal", "medical"])
def test_legal_and_medical_carry_a_disclaimer(name: str) -> None:
    assert load_domain(name).disclaimer


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "domain.toml"
    head = 'name = "x"\ndisplay_name = "X"\nlanguage = "zh"\n[[corpus]]\npath = "a.jsonl"\n'
    prompts = '[prompts]\nsystem = "s"\nanswer = "a"\nrewrite = "r"\nabstain = "n"\n'
    path.write_text(head + prompts + body, encoding="utf-8")
    return path


def test_unknown_key_names_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, '[chunking]\nmax_char = 10\n')
    with pytest.raises(ConfigError, match="unknown key.*max_char.*valid keys are:.*max_chars"):
        load_domain_file(path)


@pytest.mark.parametrize(("section", "key", "value", "valid"), [
    ("retrieval", "fusion", '"rff"', "rrf, zscore"),
    ("retrieval", "stages", '["dense", "splade"]', "bm25, dense, rerank"),
    ("abstention", "score", '"rrf"', "dense, fused, rerank"),
])
def test_stage_names_are_checked_against_core_stages(tmp_path: Path, section, key, value, valid) -> None:
    path = _write(tmp_path, f'[{section}]\n{key} = {value}\n')
    with pytest.raises(ConfigError, match=f"{section}: {key}.*choose one of: {valid}"):
        load_domain_file(path)


def test_stage_names_load_as_enums() -> None:
    from core.stages import AbstentionScore, Fusion, Stage

    cfg = load_domain("legal")
    assert cfg.retrieval.fusion is Fusion.ZSCORE and cfg.retrieval.stages == (Stage.DENSE, Stage.BM25)
    assert isinstance(cfg.abstention.score, AbstentionScore)


def test_bad_choice_lists_the_choices(tmp_path: Path) -> None:
    path = _write(tmp_path, '[generation]\nbackend = "ollama"\n')
    with pytest.raises(ConfigError, match="llama-cpp.*openai-http.*transformers.*vllm"):
        load_domain_file(path)


def test_wrong_type_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, '[chunking]\nmax_chars = "big"\n')
    with pytest.raises(ConfigError, match="max_chars"):
        load_domain_file(path)


def test_missing_required_key(tmp_path: Path) -> None:
    path = tmp_path / "domain.toml"
    path.write_text('name = "x"\ndisplay_name = "X"\n[[corpus]]\npath = "a"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="missing required key.*language"):
        load_domain_file(path)


def test_unknown_domain_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="finance, legal, medical"):
        load_domain("tax")


def test_unknown_evalset_lists_the_declared_ones() -> None:
    with pytest.raises(ConfigError, match="cail2018_lawbench_fact2article"):
        load_domain("legal").evalset("nope")


@pytest.mark.parametrize("name", ["legal", "medical", "finance"])
def test_shipped_domains_let_the_machine_choose_precision_and_device(name: str) -> None:
    embedding = load_domain(name).embedding
    assert (embedding.precision, embedding.device) == ("auto", "auto")


def test_precision_and_device_choices(tmp_path: Path) -> None:
    cfg = load_domain_file(_write(tmp_path, '[embedding]\nprecision = "fp32"\ndevice = "cpu"\n'))
    assert (cfg.embedding.precision, cfg.embedding.device) == ("fp32", "cpu")
    with pytest.raises(ConfigError, match="precision: 'fp16x' is not valid; choose one of: auto, bf16, fp32"):
        load_domain_file(_write(tmp_path, '[embedding]\nprecision = "fp16x"\n'))
    with pytest.raises(ConfigError, match="embedding: device: 'gpu' is not valid; choose one of: auto, cpu, cuda"):
        load_domain_file(_write(tmp_path, '[embedding]\ndevice = "gpu"\n'))
