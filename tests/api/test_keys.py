"""The key file (api/keys.py) and the token buckets (api/limits.py), without a server: what is on disk, what
verifies, what a second process sees."""

from __future__ import annotations

import json
import stat

import pytest

from api.keys import KeyStore, Scopes, key_id, read_records
from api.limits import RateLimiter
from core.errors import ConfigError, DossierError


def test_the_key_file_round_trips_without_the_key(tmp_path):
    path = tmp_path / "home" / "keys.json"
    store = KeyStore(path)
    record, key = store.add("clinic", Scopes(domains=("medical",), collections=("intake",)))
    other, other_key = store.add("ops", Scopes(admin=True))
    text = path.read_text()
    assert key not in text and other_key not in text and key[4:] not in text  # no plaintext, no secret part
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.startswith("dsk_") and key_id(key) == record.id == key[4:12]
    assert record.hash.salt != other.hash.salt  # a salt per key
    entry = json.loads(text)["keys"][0]
    assert entry["scopes"] == {"domains": ["medical"], "collections": ["intake"], "admin": False}
    assert entry["hash"]["scheme"] == "scrypt" and entry["revoked"] is False and entry["created"]
    assert read_records(path) == (record, other)


def test_verify_finds_the_key_by_id_and_refuses_anything_else(tmp_path):
    store = KeyStore(tmp_path / "keys.json")
    record, key = store.add("ci", Scopes())
    assert store.verify(key) == record and store.is_verified(key)
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # same id, wrong secret
    assert store.verify("dsk_") is None and store.verify("s3cret") is None
    assert KeyStore(tmp_path / "missing.json").verify(key) is None


def test_a_revocation_by_another_process_is_seen(tmp_path):
    server = KeyStore(tmp_path / "keys.json")
    record, key = server.add("ci", Scopes())
    assert not server.verify(key).revoked
    revoked = KeyStore(server.path).revoke(record.id)  # as `dossier keys revoke` does, from another process
    assert revoked.revoked and revoked.revoked_at
    assert not server.is_verified(key)  # the file changed: reread, and the keys verified before forgotten
    assert server.verify(key).revoked
    assert server.has_keys()  # a revoked key still counts: revoking the last key does not open the server
    with pytest.raises(DossierError, match="no key with id 'nope'"):
        server.revoke("nope")


def test_a_key_file_that_does_not_parse_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not a Dossier key file"):
        KeyStore(path).has_keys()


def test_token_buckets_refill_at_the_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])  # one token a second, two at once
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # callers do not share a bucket
    now[0] = 1.0
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert RateLimiter(per_minute=0).take("a") == 0.0  # 0: no limit


def test_a_new_keys_id_never_starts_with_a_dash_so_the_cli_can_take_it() -> None:
    from api.keys import key_id, new_key

    assert not any(key_id(new_key()).startswith("-") for _ in range(2000))  # 1 in 64 would, before
