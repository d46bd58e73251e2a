"""`dossier train ship`: a run's adapter becomes the domain's tuned generator — float16 weights, provenance, and the
pin in domain.toml that `shipped_adapter` then checks."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from domains import load_domain
from domains.config import domain_from_mapping
from models.generator_adapter import shipped_adapter
from models.peft_lora import AdapterError, read_lora
from models.ship_adapter import SHIPPED_DIR, ship_adapter

KEY = "base_model.model.model.layers.{}.self_attn.q_proj.lora_{}.weight"


def _run(folder: Path) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    adapter = folder / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2, "lora_alpha": 4}))
    save_file({KEY.format(1, "A"): rng.standard_normal((2, 8)).astype(np.float32),
               KEY.format(1, "B"): rng.standard_normal((8, 2)).astype(np.float32)},
              str(adapter / "adapter_model.safetensors"))
    (folder / "data_report.json").write_text(json.dumps({"kept": 3}))
    return folder


@pytest.fixture()
def domain_root(tmp_path) -> Path:
    root = tmp_path / "legal"
    root.mkdir()
    shutil.copy(load_domain("legal").root / "domain.toml", root / "domain.toml")
    return root


def _load(root: Path):
    return domain_from_mapping(tomllib.loads((root / "domain.toml").read_text(encoding="utf-8")), root)


def test_a_shipped_adapter_is_half_precision_pinned_and_loads(domain_root, tmp_path) -> None:
    run = _run(tmp_path / "run")
    folder, sha256 = ship_adapter(run, domain_root, "dossier train ship --domain legal --run RUN")
    cfg = _load(domain_root)
    assert cfg.models.generator_adapter == SHIPPED_DIR and cfg.models.generator_adapter_sha256 == sha256
    assert cfg.models.generator_gguf == load_domain("legal").models.generator_gguf  # the rest of [models] kept
    assert shipped_adapter(cfg).sha256 == sha256
    shipped, trained = read_lora(folder), read_lora(run / "adapter")
    a_shipped, a_trained = shipped.pairs["blk.1.attn_q.weight"][0], trained.pairs["blk.1.attn_q.weight"][0]
    np.testing.assert_allclose(a_shipped, a_trained, rtol=1e-3)  # float16 of the trained weights
    assert (folder / "adapter_model.safetensors").stat().st_size < (run / "adapter" / "adapter_model.safetensors"
                                                                    ).stat().st_size
    provenance = json.loads((folder / "PROVENANCE.json").read_text())
    assert provenance["command"].startswith("dossier train ship") and provenance["data_report"] == {"kept": 3}


def test_shipping_again_replaces_the_adapter_and_its_pin(domain_root, tmp_path) -> None:
    _, first = ship_adapter(_run(tmp_path / "one"), domain_root)
    second_run = _run(tmp_path / "two")
    (second_run / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2,
                                                                           "lora_alpha": 8}))
    folder, second = ship_adapter(second_run, domain_root)
    cfg = _load(domain_root)
    assert first == second  # same weights ...
    assert read_lora(folder).scale == 4.0  # ... the new config
    assert (domain_root / "domain.toml").read_text().count("generator_adapter_sha256") == 1
    assert [p.name for p in folder.parent.iterdir()] == ["generator-lora"]  # no temporary or old folder left
    assert shipped_adapter(cfg) is not None


def test_a_changed_shipped_adapter_fails_its_pin(domain_root, tmp_path) -> None:
    folder, _ = ship_adapter(_run(tmp_path / "run"), domain_root)
    cfg = _load(domain_root)
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x00")
    with pytest.raises(AdapterError, match="changed or damaged"):
        shipped_adapter(cfg)
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        ship_adapter(tmp_path, domain_root)
    assert shipped_adapter(replace(cfg, models=replace(cfg.models, generator_adapter=""))) is None
