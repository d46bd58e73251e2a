"""`dossier keys add | list | revoke` on a real key file, and `dossier serve` refusing a non-loopback host with no
key (uvicorn.run is the one seam replaced: nothing listens)."""

from __future__ import annotations

import json
import stat

import pytest

from api.keys import KeyStore
from cli import main


@pytest.fixture
def keys_path(tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    monkeypatch.setenv("DOSSIER_KEYS_FILE", str(path))
    monkeypatch.delenv("DOSSIER_API_KEYS", raising=False)
    return path


def test_add_prints_the_key_once_list_never_shows_it_and_revoke_marks_it(keys_path, capsys):
    assert main(["keys", "add", "--name", "clinic", "--domains", "medical", "--collections", "intake"]) == 0
    out, err = capsys.readouterr()
    key = out.strip()
    [record] = KeyStore(keys_path).records()
    assert key.startswith(f"dsk_{record.id}") and "only time the key is shown" in err
    assert key not in keys_path.read_text() and stat.S_IMODE(keys_path.stat().st_mode) == 0o600
    assert KeyStore(keys_path).verify(key) == record

    assert main(["keys", "add", "--name", "ops", "--admin"]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    table = capsys.readouterr().out
    assert record.id in table and "clinic" in table and "medical" in table and "intake" in table
    assert key not in table and record.hash.digest not in table and record.hash.salt not in table
    assert main(["keys", "revoke", record.id]) == 0
    assert main(["keys", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])  # after revoke's own line
    assert [(r["name"], r["domains"], r["admin"], bool(r["revoked"])) for r in rows] == [
        ("clinic", ["medical"], False, True), ("ops", None, True, False)]
    assert all(set(r) == {"id", "name", "domains", "collections", "admin", "created", "revoked"} for r in rows)


def test_mistakes_are_refused_with_the_valid_choices(keys_path, capsys):
    assert main(["keys", "add", "--name", "x", "--domains", "legal,cooking"]) == 2
    assert "cooking" in capsys.readouterr().err and not keys_path.exists()
    assert main(["keys", "revoke", "nope"]) == 2
    assert "no key with id 'nope'" in capsys.readouterr().err


@pytest.fixture
def served(monkeypatch) -> dict:
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    return seen


def test_serve_refuses_a_wide_host_without_keys(keys_path, served, capsys):
    assert main(["serve", "--domains", "legal", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 with no API key" in err and "--insecure-no-auth" in err and not served
    assert main(["serve", "--domains", "legal", "--host", "0.0.0.0", "--insecure-no-auth"]) == 0
    assert "auth OFF on 0.0.0.0" in capsys.readouterr().err and served["host"] == "0.0.0.0"


def test_serve_on_a_wide_host_with_a_key_or_on_loopback_without(keys_path, served, capsys, monkeypatch):
    assert main(["serve", "--domains", "legal"]) == 0  # 127.0.0.1 with no key: open, as tests and `make run` use
    assert "auth off (loopback" in capsys.readouterr().err
    limits = served["app"].state.limits
    assert (limits.requests_per_minute, limits.answer_deadline_s) == (120, 300.0)  # serve's defaults
    main(["keys", "add", "--name", "ci"])
    assert main(["serve", "--domains", "legal", "--host", "0.0.0.0", "--rate-limit", "30",
                 "--cors-origin", "https://a.example", "--audit-log", str(keys_path.parent / "a.log")]) == 0
    assert "auth on (1 key(s)" in capsys.readouterr().err
    assert served["app"].state.limits.requests_per_minute == 30
    monkeypatch.setenv("DOSSIER_API_KEYS", "s3cret")  # the simple path counts as keys too
    assert main(["serve", "--domains", "legal", "--host", "::", "--keys-file", str(keys_path.parent / "none")]) == 0
