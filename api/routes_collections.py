"""/v1/collections/{domain}: the caller's own documents for a domain (api/collections.py). Upload a file (202:
queued; ingested and indexed in the background), list the files and where each stands, delete one or all.
/v1/ask and /v1/search add the collection to the domain's search with `"collection": true` (`with_collection`).

Scopes: a collection is named by its domain, so a key needs the domain in its `domains` scope and in its
`collections` scope (`dossier keys add --collections legal`; default all, `--collections ''` none) for every route
here and for `collection: true`. The routes share the /v1 auth, rate limit, audit log and error envelope; only the
upload's body limit differs (api/upload_limit.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile  # what Request.form() holds (FastAPI's is a subclass)

from api.auth import Principal, require_api_key
from api.collection_store import READY, CollectionFull
from api.collections import UPLOAD_FORMATS, Collections, collection_base
from api.errors import ApiError
from api.owner import owner_of, served_domain
from api.schemas import ID_PATTERN, CollectionOut, UploadOut
from api.state import pipeline_for
from core.errors import IngestError
from ingest.sources import detect_format, upload_path
from rag.pipeline import RagPipeline
from retrieval.merge import MergedRetriever

router = APIRouter(prefix="/v1/collections", dependencies=[Depends(require_api_key)])
FileId = PathParam(pattern=ID_PATTERN)
ACCEPTED = ", ".join(f".{f}" for f in UPLOAD_FORMATS)


def _collections(request: Request) -> Collections:
    return request.app.state.collections


def allow_collection(request: Request, domain: str) -> None:
    """403 when the caller's key may not keep a collection in `domain`."""
    principal: Principal = getattr(request.state, "principal", Principal(None))
    if not principal.scopes.allows_collection(domain):
        mine = ", ".join(principal.scopes.collections or ()) or "none"
        raise ApiError(403, "forbidden", f"key {principal.id} may not use a collection in {domain!r}; its "
                       f"collections: {mine}")


def _owner(request: Request, domain: str) -> str:
    served_domain(request, domain)
    allow_collection(request, domain)
    return owner_of(request)


def checked_name(name: str | None, folder: Path) -> str:
    """415 for a type ingest does not take from an upload, 400 for a name `upload_path` refuses."""
    if not name:
        raise ApiError(400, "bad_request", "the uploaded part has no file name")
    if detect_format(Path(name)) not in UPLOAD_FORMATS:
        raise ApiError(415, "unsupported_type", f"{name!r}: not a file type this server reads; accepted: {ACCEPTED}")
    try:
        upload_path(folder, name)
    except IngestError as err:
        raise ApiError(400, "bad_request", str(err)) from err
    return name


# The body is read by the route itself (so the upload cap applies as it is read): described here for the docs
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


@router.post("/{domain}/files", status_code=202, response_model=UploadOut, openapi_extra=UPLOAD_BODY)
async def upload(domain: str, request: Request) -> dict[str, Any]:
    """multipart/form-data, field `file`. 202 {"file_id", "name", "status": "queued"}; GET the collection for
    where it stands. 413 over the upload cap, 415 an unsupported type, 400 an empty file or a bad name."""
    pipeline = pipeline_for(request, domain)  # its models index the file: 503 until the domain is ready
    allow_collection(request, domain)
    owner, collections = owner_of(request), _collections(request)
    if collection_base(pipeline) is None:
        raise ApiError(501, "not_supported", f"domain {domain!r} is served by a retriever without an index")
    async with request.form(max_files=1, max_fields=8) as form:  # the file is spooled to disk past 1 MiB
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ApiError(422, "invalid_request", "send the file as multipart/form-data in a field named 'file'")
        file_id = collections.new_file_id()
        name = checked_name(part.filename, collections.layout(owner, domain).file_dir(file_id))
        size = part.size if part.size is not None else await run_in_threadpool(_size, part)
        if size == 0:
            raise ApiError(400, "empty_file", f"{name!r} is empty: nothing to index")
        if size > collections.upload_max_bytes:
            raise ApiError(413, "too_large", f"{name!r} is over this server's upload limit")
        try:
            row = await run_in_threadpool(collections.add, owner, domain, file_id, name, part.file, size)
        except CollectionFull as err:
            raise ApiError(409, "limit_reached", str(err)) from err
    return {"file_id": row.file_id, "name": row.name, "status": row.status}


def _size(part: UploadFile) -> int:
    part.file.seek(0, 2)
    size = part.file.tell()
    part.file.seek(0)
    return size


@router.get("/{domain}", response_model=CollectionOut)
def listing(domain: str, request: Request) -> dict[str, Any]:
    """The caller's files in `domain`, in upload order, each with its status (queued, indexing, ready, failed
    with `error`), chunks and progress; `chunks`: those search can find."""
    owner, collections = _owner(request, domain), _collections(request)
    collections.resume(owner, domain)
    files = collections.store.files(owner, domain)
    return {"domain": domain, "files": [f.to_json() for f in files],
            "chunks": sum(f.chunks for f in files if f.status == READY)}


@router.delete("/{domain}/files/{file_id}", status_code=204)
def delete_file(domain: str, request: Request, file_id: str = FileId) -> Response:
    if not _collections(request).delete(_owner(request, domain), domain, file_id):
        raise ApiError(404, "file_not_found", f"no file {file_id!r} in your {domain} collection")
    return Response(status_code=204)


@router.delete("/{domain}", status_code=204)
def delete_collection(domain: str, request: Request) -> Response:
    _collections(request).delete(_owner(request, domain), domain)
    return Response(status_code=204)


def with_collection(request: Request, domain: str, pipeline: RagPipeline) -> RagPipeline:
    """The pipeline searching the caller's collection too (retrieval/merge.py says how the two are merged); the
    pipeline itself while the collection has nothing ready. Opens the collection's index: call it off the loop."""
    allow_collection(request, domain)
    base = collection_base(pipeline)
    if base is None:
        raise ApiError(501, "not_supported", f"domain {domain!r} is served by a retriever without an index")
    extra = _collections(request).retriever(owner_of(request), domain, base)
    if extra is None:
        return pipeline
    return RagPipeline(pipeline.cfg, MergedRetriever(pipeline.retriever, extra), pipeline.generator)
