"""`dossier keys add | list | revoke`: the API keys `dossier serve` accepts, kept in the key file as salted scrypt
hashes (api/keys.py). The key file: --keys-file, else $DOSSIER_KEYS_FILE, else $DOSSIER_HOME/keys.json. A running
server rereads the file at its next request: a new key works and a revoked one stops at once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def keys_file_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys-file", type=Path, help="the key file (default: env DOSSIER_KEYS_FILE, else "
                        "$DOSSIER_HOME/keys.json)")


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="API keys for dossier serve: add (shown once), list, revoke")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    add = sub.add_parser("add", help="make a key and print it once (stdout: the key alone); only its hash is kept")
    add.add_argument("--name", required=True, help="who or what holds the key (shown in `keys list`)")
    add.add_argument("--domains", help="comma-separated domains the key may ask (default: all)")
    add.add_argument("--collections", help="comma-separated collections it may use (default: all; no route names "
                     "a collection yet: kept for the upload routes)")
    add.add_argument("--admin", action="store_true", help="may read the admin routes (/metrics)")
    add.set_defaults(handler=_add)

    listing = sub.add_parser("list", help="id, name, scopes, created, revoked (never a key or a hash)")
    listing.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    listing.set_defaults(handler=_list)

    revoke = sub.add_parser("revoke", help="revoke a key by its id (a running server refuses it at once)")
    revoke.add_argument("id", help="the key's id: `keys list`, or the 8 characters after dsk_ in the key")
    revoke.set_defaults(handler=_revoke)
    for parser in (add, listing, revoke):
        keys_file_arg(parser)


def _store(args: argparse.Namespace) -> Any:
    from api.keys import KeyStore
    from core.paths import keys_file

    return KeyStore(args.keys_file or keys_file())


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def _add(args: argparse.Namespace) -> int:
    from api.keys import Scopes
    from core.errors import ConfigError
    from domains import available_domains

    domains = _names(args.domains)
    unknown = sorted(set(domains or ()) - set(available_domains()))
    if unknown or domains == ():
        raise ConfigError.invalid_choice("--domains", ",".join(unknown), available_domains())
    store = _store(args)
    record, key = store.add(args.name, Scopes(domains, _names(args.collections), args.admin))
    print(key)
    print(f"key {record.id} ({record.name}): {record.scopes.describe()}; kept as a salted hash in {store.path}.\n"
          "This is the only time the key is shown: store it now (a lost key is revoked and replaced).",
          file=sys.stderr)
    return 0


def _rows(store: Any) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "name": r.name, "domains": r.scopes.domains, "collections": r.scopes.collections,
         "admin": r.scopes.admin, "created": r.created, "revoked": r.revoked_at if r.revoked else None}
        for r in store.records()
    ]


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = _rows(store)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print(f"no keys in {store.path}; add one with: dossier keys add --name NAME", file=sys.stderr)
        return 0
    print(f"{'id':<9} {'name':<20} {'domains':<16} {'collections':<12} {'admin':<5} {'created':<25} revoked")
    for row in rows:
        domains = ",".join(row["domains"]) if row["domains"] is not None else "all"
        collections = ",".join(row["collections"]) if row["collections"] is not None else "all"
        print(f"{row['id']:<9} {row['name'][:20]:<20} {domains:<16} {collections:<12} "
              f"{'yes' if row['admin'] else 'no':<5} {row['created']:<25} {row['revoked'] or 'no'}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    record = _store(args).revoke(args.id)
    print(f"key {record.id} ({record.name}) revoked at {record.revoked_at}")
    return 0
