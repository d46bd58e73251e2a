"""Private collections over a real uvicorn server on 127.0.0.1 and the real app: a .docx made with python-docx is
uploaded, ingested by the real loaders, indexed by the real IndexBuilder with MiniLM into a versioned store, and
found by the real HybridRetriever beside the Criminal Law slice; the generator cites [1] (tests/api/conftest.py),
so an answer's citation can be followed into the uploaded file. Hostile and broken uploads, owners kept apart,
deletes."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import needs_minilm
from live_server import LiveServer

from api import create_app
from api.keys import KeyStore, Scopes

pytestmark = needs_minilm

TENANCY = [
    "Tenancy agreement between Acme Holdings and the tenant Li Wei for the apartment at 88 Harbour Road.",
    "The monthly rent for the apartment at 88 Harbour Road is 4,200 yuan, payable on the fifth day of each month.",
    "The deposit of two months' rent is returned within thirty days after the tenancy ends.",
]
RENT_QUESTION = "What is the monthly rent for the apartment at Harbour Road?"
MIB = 1024 * 1024


def user(name: str) -> dict[str, str]:
    return {"X-Dossier-User": f"{name}-session-0001"}


def docx_bytes(paragraphs: list[str]) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(citing_pipeline, tmp_path_factory):
    app = create_app(["legal"], build=lambda _: citing_pipeline, api_keys=[],
                     collections_root=tmp_path_factory.mktemp("collections"))
    with LiveServer(app) as live:
        yield live


def upload(url: str, headers: dict[str, str], name: str, content: bytes) -> httpx.Response:
    return httpx.post(f"{url}/v1/collections/legal/files", files={"file": (name, content)}, headers=headers,
                      timeout=120)


def collection(url: str, headers: dict[str, str]) -> dict:
    r = httpx.get(f"{url}/v1/collections/legal", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def settled(url: str, headers: dict[str, str], file_id: str, timeout_s: float = 300) -> dict:
    """The file's entry once it is ready or failed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        entry = next(f for f in collection(url, headers)["files"] if f["file_id"] == file_id)
        if entry["status"] in ("ready", "failed"):
            return entry
        assert entry["status"] in ("queued", "indexing") and 0 <= entry.get("progress", 0) <= 1
        time.sleep(0.2)
    raise AssertionError(f"{file_id} did not settle in {timeout_s} s")


def uploaded_ready(url: str, headers: dict[str, str], name: str = "tenancy.docx") -> str:
    r = upload(url, headers, name, docx_bytes(TENANCY))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["name"] == name
    entry = settled(url, headers, body["file_id"])
    assert entry["status"] == "ready" and entry["chunks"] >= 1, entry
    return body["file_id"]


def search(url: str, headers: dict[str, str], collection_on: bool = True) -> list[dict]:
    payload = {"domain": "legal", "query": RENT_QUESTION, "k": 5, "collection": collection_on}
    r = httpx.post(f"{url}/v1/search", json=payload, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["hits"]


def files_in(hits: list[dict]) -> set[str]:
    return {h["metadata"]["file_id"] for h in hits if h["metadata"].get("collection")}


def test_an_uploaded_docx_is_found_and_cited(server):
    url, alice = server.url, user("alice")
    file_id = uploaded_ready(url, alice)
    listed = collection(url, alice)
    assert listed["domain"] == "legal" and listed["chunks"] >= 1

    hits = search(url, alice)
    top = hits[0]  # the clearly relevant uploaded passage wins over the statutes
    assert top["metadata"]["collection"] is True and top["metadata"]["file_id"] == file_id
    assert top["title"] == "tenancy.docx" and "4,200 yuan" in top["text"]
    assert any(not h["metadata"].get("collection") for h in hits)  # the corpus is still searched
    assert not files_in(search(url, alice, collection_on=False))

    payload = {"domain": "legal", "question": RENT_QUESTION, "collection": True}
    answer = httpx.post(f"{url}/v1/ask", json=payload, headers=alice, timeout=120).json()
    assert not answer["abstained"], answer["trace"]["abstention"]
    by_id = {h["chunk_id"]: h for h in answer["hits"]}
    cited = by_id[answer["citations"][0]["chunk_id"]]
    assert cited["metadata"]["file_id"] == file_id and answer["citations"][0]["title"] == "tenancy.docx"
    assert "retrieve.collection" in answer["trace"]["timings_ms"]


def test_a_streamed_answer_cites_the_upload_too(server):
    url, bea = server.url, user("bea")
    file_id = uploaded_ready(url, bea)
    payload = {"domain": "legal", "question": RENT_QUESTION, "collection": True, "stream": True}
    with httpx.stream("POST", f"{url}/v1/ask", json=payload, headers=bea, timeout=120) as r:
        lines = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
    import json

    final = json.loads(lines[-2])["answer"]
    hit = next(h for h in final["hits"] if h["chunk_id"] == final["citations"][0]["chunk_id"])
    assert hit["metadata"]["file_id"] == file_id


def test_broken_and_hostile_files_get_clear_errors_and_nothing_else_is_lost(server):
    url, carl = server.url, user("carl")
    good = uploaded_ready(url, carl)
    r = upload(url, carl, "setup.exe", b"MZ\x90\x00")
    assert r.status_code == 415 and ".pdf" in r.json()["error"]["reason"]
    r = upload(url, carl, "empty.txt", b"")
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_file"
    r = upload(url, carl, "../../etc/passwd.txt", b"root:x:0:0")
    assert r.status_code == 400 and "refused" in r.json()["error"]["reason"]
    r = httpx.post(f"{url}/v1/collections/legal/files", data={"text": "no file"}, headers=carl)
    assert r.status_code == 422 and "'file'" in r.json()["error"]["reason"]
    r = upload(url, carl, "broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 200)
    assert r.status_code == 202
    failed = settled(url, carl, r.json()["file_id"])
    assert failed["status"] == "failed" and "pdf" in failed["error"].lower() and failed["chunks"] == 0
    files = {f["file_id"]: f for f in collection(url, carl)["files"]}
    assert files[good]["status"] == "ready" and len(files) == 2
    assert good in files_in(search(url, carl))


def test_an_oversize_file_is_refused_before_it_is_read(server):
    r = upload(server.url, user("dora"), "scan.pdf", b"\x00" * (60 * 1000 * 1000))
    assert r.status_code == 413
    assert "50.0 MiB upload limit" in r.json()["error"]["reason"]
    assert collection(server.url, user("dora"))["files"] == []


def chunked_upload(name: str, size: int) -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart body sent without Content-Length (chunked): the cap is met while it is read."""
    boundary = "dossier-test-boundary"

    def body() -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
               "Content-Type: text/plain\r\n\r\n").encode()
        for _ in range(size // (256 * 1024)):
            yield b"a" * (256 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_the_upload_cap_is_configurable_and_holds_without_content_length(citing_pipeline, tmp_path: Path):
    app = create_app(["legal"], build=lambda _: citing_pipeline, api_keys=[], collections_root=tmp_path,
                     upload_max_bytes=1 * MIB)
    with LiveServer(app) as live:
        body, headers = chunked_upload("notes.txt", 3 * MIB)
        r = httpx.post(f"{live.url}/v1/collections/legal/files", content=body, headers=headers, timeout=60)
        assert r.status_code == 413 and "1.0 MiB upload limit" in r.json()["error"]["reason"]
        body, headers = chunked_upload("notes.txt", MIB // 2)
        r = httpx.post(f"{live.url}/v1/collections/legal/files", content=body, headers=headers, timeout=60)
        assert r.status_code == 202, r.text
        r = httpx.post(f"{live.url}/v1/search", json={"domain": "legal", "query": "x" * 600_000})
        assert r.status_code == 413  # every other route keeps its own, smaller body limit


def check_apart(url: str, owner: dict[str, str], other: dict[str, str]) -> None:
    mine = uploaded_ready(url, owner, "owner-only.docx")
    assert mine not in {f["file_id"] for f in collection(url, other)["files"]}
    assert mine not in files_in(search(url, other))
    r = httpx.delete(f"{url}/v1/collections/legal/files/{mine}", headers=other)
    assert r.status_code == 404  # not 403: no hint that the file exists
    assert httpx.delete(f"{url}/v1/collections/legal", headers=other).status_code == 204  # the other's own
    assert mine in files_in(search(url, owner))  # untouched


def test_two_browser_sessions_never_see_each_others_files(server):
    check_apart(server.url, user("erin"), user("fred"))
    check_apart(server.url, user("fred"), {})  # the anonymous owner


def test_two_api_keys_never_see_each_others_files(citing_pipeline, tmp_path: Path):
    keys = KeyStore(tmp_path / "keys.json")
    _, first = keys.add("first", Scopes())
    _, second = keys.add("second", Scopes())
    _, no_uploads = keys.add("reader", Scopes(collections=()))
    app = create_app(["legal"], build=lambda _: citing_pipeline, api_keys=[], keys_file=keys.path,
                     collections_root=tmp_path / "collections")
    same_user = user("shared")  # ignored with keys on: the key is the owner
    with LiveServer(app) as live:
        check_apart(live.url, {"Authorization": f"Bearer {first}", **same_user},
                    {"Authorization": f"Bearer {second}", **same_user})
        reader = {"Authorization": f"Bearer {no_uploads}"}
        r = upload(live.url, reader, "a.txt", b"text")
        assert r.status_code == 403 and "collection" in r.json()["error"]["reason"]
        payload = {"domain": "legal", "query": RENT_QUESTION, "collection": True}
        assert httpx.post(f"{live.url}/v1/search", json=payload, headers=reader).status_code == 403
        assert httpx.post(f"{live.url}/v1/search", json=payload | {"collection": False},
                          headers=reader).status_code == 200


def test_delete_a_file_then_the_collection(server):
    url, gina = server.url, user("gina")
    first = uploaded_ready(url, gina, "first.docx")
    r = upload(url, gina, "copy.md", "\n".join(TENANCY).encode())  # the same text as first.docx
    copy = settled(url, gina, r.json()["file_id"])
    assert copy["status"] == "ready" and copy["chunks"] == 0 and "first.docx" in copy["note"]
    assert httpx.delete(f"{url}/v1/collections/legal/files/{first}", headers=gina).status_code == 204
    assert first not in {f["file_id"] for f in collection(url, gina)["files"]}
    assert first not in files_in(search(url, gina))  # gone from search at once
    assert httpx.delete(f"{url}/v1/collections/legal/files/{first}", headers=gina).status_code == 404
    deadline = time.monotonic() + 120  # the worker indexes the copy now that the original is gone
    while collection(url, gina)["chunks"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert files_in(search(url, gina)) == {copy["file_id"]}
    assert httpx.delete(f"{url}/v1/collections/legal", headers=gina).status_code == 204
    assert collection(url, gina) == {"domain": "legal", "files": [], "chunks": 0}
    assert not files_in(search(url, gina))
