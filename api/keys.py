"""The API key store: a JSON file of key records, each with a salted scrypt hash of its key, never the key.

A key reads `dsk_` + 43 url-safe characters (secrets.token_urlsafe(32)); its first 8 characters after `dsk_` are
the key's id, public (logs, `dossier keys list`, the audit log), so a request's key is found by id and hashed
once. The other 35 characters (~208 bits) are the secret. The file is rewritten whole (temp file + os.replace,
mode 0600) under a lock, so a reader sees the old file or the new one and two `dossier keys` runs do not lose
each other's change. Pure stdlib: the CLI uses it without a server.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, DossierError

log = logging.getLogger(__name__)

KEY_PREFIX = "dsk_"
ID_CHARS = 8
# scrypt, RFC 7914 interactive parameters (16 MiB, ~0.1 s here). The keys are random, so the cost is not what
# protects them; a verified key is remembered in memory so a request does not pay it twice.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
FILE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Scopes:
    """What a key may do. `domains` / `collections` None: all of them. `admin`: the admin routes (/metrics)."""

    domains: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    admin: bool = False

    def allows_domain(self, domain: str) -> bool:
        return self.domains is None or domain in self.domains

    def allows_collection(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def describe(self) -> str:
        def names(values: tuple[str, ...] | None) -> str:
            return "all" if values is None else ",".join(values) or "none"

        return f"domains={names(self.domains)} collections={names(self.collections)} admin={str(self.admin).lower()}"


FULL_SCOPE = Scopes(admin=True)


@dataclass(frozen=True, slots=True)
class KeyHash:
    salt: str  # hex, 16 random bytes per key
    digest: str  # hex, scrypt(key, salt)
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P
    scheme: str = "scrypt"

    def matches(self, key: str) -> bool:
        computed = _scrypt(key, bytes.fromhex(self.salt), self.n, self.r, self.p)
        return hmac.compare_digest(computed, bytes.fromhex(self.digest))


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    name: str
    created: str  # ISO 8601, UTC
    hash: KeyHash
    scopes: Scopes = field(default_factory=Scopes)
    revoked: bool = False
    revoked_at: str | None = None


def _scrypt(key: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, maxmem=2 * 128 * r * n, dklen=32)


def _fingerprint(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()  # in memory only: the cache of keys verified with scrypt


def new_key() -> str:
    """A key whose id does not start with "-": `dossier keys revoke -Xy...` would read it as an option (a fresh
    clone's test drew one)."""
    while (key := KEY_PREFIX + secrets.token_urlsafe(32))[len(KEY_PREFIX)] == "-":
        pass
    return key


def key_id(key: str) -> str | None:
    """The id a key claims, or None for something that is not a Dossier key."""
    if not key.startswith(KEY_PREFIX) or len(key) <= len(KEY_PREFIX) + ID_CHARS:
        return None
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + ID_CHARS]


def hash_key(key: str) -> KeyHash:
    salt = secrets.token_bytes(16)
    return KeyHash(salt=salt.hex(), digest=_scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_to_json(record: KeyRecord) -> dict[str, Any]:
    return asdict(record)


def record_from_json(data: dict[str, Any]) -> KeyRecord:
    scopes = data.get("scopes") or {}
    return KeyRecord(
        id=data["id"], name=data["name"], created=data["created"], hash=KeyHash(**data["hash"]),
        scopes=Scopes(
            domains=None if scopes.get("domains") is None else tuple(scopes["domains"]),
            collections=None if scopes.get("collections") is None else tuple(scopes["collections"]),
            admin=bool(scopes.get("admin", False)),
        ),
        revoked=bool(data.get("revoked", False)), revoked_at=data.get("revoked_at"),
    )


def read_records(path: Path) -> tuple[KeyRecord, ...]:
    """The records in `path`; none when it does not exist. A file that does not parse is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    try:
        data = json.loads(text)
        return tuple(record_from_json(item) for item in data["keys"])
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"key file {path} is not a Dossier key file ({type(err).__name__}: {err})") from err


def write_records(path: Path, records: Sequence[KeyRecord]) -> None:
    """Atomically: a temp file beside `path` (mkstemp creates it 0600), fsync, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": FILE_VERSION, "keys": [record_to_json(r) for r in records]}, indent=2)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One read-modify-write at a time across processes (a lock file beside the key file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class KeyStore:
    """The key file at `path`, reread when it changes on disk (a `dossier keys revoke` reaches a running server
    at its next request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, KeyRecord] = {}
        self._verified: dict[bytes, str] = {}  # sha256(key) -> id of keys already checked with scrypt

    def records(self) -> tuple[KeyRecord, ...]:
        self._refresh()
        return tuple(self._by_id.values())

    def has_keys(self) -> bool:
        """True once any key was added, revoked ones included: revoking the last key must not open the server."""
        self._refresh()
        return bool(self._by_id)

    def add(self, name: str, scopes: Scopes) -> tuple[KeyRecord, str]:
        """A new record and its key (the only time the key exists outside the caller's hands)."""
        with _locked(self.path):
            records = read_records(self.path)
            taken = {r.id for r in records}
            key = new_key()
            while key_id(key) in taken:  # 48 bits of id: a clash is rare, never silent
                key = new_key()
            record = KeyRecord(id=str(key_id(key)), name=name, created=_now(), hash=hash_key(key), scopes=scopes)
            write_records(self.path, (*records, record))
        return record, key

    def revoke(self, id_: str) -> KeyRecord:
        with _locked(self.path):
            records = read_records(self.path)
            match = [r for r in records if r.id == id_]
            if not match:
                known = ", ".join(r.id for r in records) or "none"
                raise DossierError(f"no key with id {id_!r} in {self.path}; ids: {known}")
            if match[0].revoked:
                return match[0]
            revoked = replace(match[0], revoked=True, revoked_at=_now())
            write_records(self.path, [revoked if r.id == id_ else r for r in records])
        return revoked

    def is_verified(self, key: str) -> bool:
        """True when this key passed scrypt before and the file has not changed since: checking it is free."""
        self._refresh()
        return _fingerprint(key) in self._verified

    def verify(self, key: str) -> KeyRecord | None:
        """The record whose key this is (revoked or not: the caller says why it refuses), else None."""
        id_ = key_id(key)
        self._refresh()
        record = self._by_id.get(id_) if id_ else None
        if record is None:
            return None
        fingerprint = _fingerprint(key)
        if self._verified.get(fingerprint) == record.id:
            return record
        if not record.hash.matches(key):
            return None
        with self._lock:
            if len(self._verified) > 4096:  # bounded: a server sees few distinct keys
                self._verified.clear()
            self._verified[fingerprint] = record.id
        return record

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        with self._lock:
            try:
                records = read_records(self.path)
            except ConfigError:
                if self._stamp is None and not self._by_id:
                    raise  # at start: refuse to serve from a key file that does not parse
                log.exception("key file changed but does not parse; keeping the keys read before")
                return
            self._by_id = {r.id: r for r in records}
            self._verified.clear()
            self._stamp = stamp
