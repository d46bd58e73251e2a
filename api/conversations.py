"""The server's record of conversations: each one an owner's (api/owner.py), in one domain, with its turns (the
question and the full /v1/ask response JSON, so a reopened conversation shows its citations again and an export
can quote the passages). SQLite at `$DOSSIER_HOME/conversations.sqlite`:

  conversations(id PK, owner, domain, title, created, updated)   -- times ISO 8601 UTC, milliseconds
  turns(conversation_id, n, question, answer json, created)       -- n counts from 0 within a conversation

Every read and write names the owner, so no query can return another owner's row. A connection per call: the
routes run in worker threads, and SQLite in WAL mode lets readers go on while one turn is written
(api/sqlite_file.py).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.sqlite_file import SqliteFile, now
from core.paths import data_home

log = logging.getLogger(__name__)

STORE_FILE = "conversations.sqlite"
TITLE_CHARS = 40  # a conversation without a title is named by its first question, cut here
MAX_CONVERSATIONS = 1_000  # per owner: a script that creates them in a loop stops here, not at a full disk
MAX_TURNS = 500  # per conversation; each turn keeps its answer JSON (~5-30 KB)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (id TEXT PRIMARY KEY, owner TEXT NOT NULL, domain TEXT NOT NULL,
  title TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations(owner, updated);
CREATE TABLE IF NOT EXISTS turns (conversation_id TEXT NOT NULL, n INTEGER NOT NULL, question TEXT NOT NULL,
  answer TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (conversation_id, n));
"""


class ConversationLimit(Exception):
    """An owner's conversations, or a conversation's turns, are at their cap."""


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    domain: str
    title: str
    created: str
    updated: str
    turns: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON of a conversation in a listing (`turns` is the count)."""
        return {"id": self.id, "domain": self.domain, "title": self.title, "created": self.created,
                "updated": self.updated, "turns": self.turns}


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    answer: dict[str, Any]  # the /v1/ask response as the client received it
    created: str


def default_title(question: str) -> str:
    return " ".join(question.split())[:TITLE_CHARS]


class ConversationStore:
    """Conversations in the SQLite file `path` (default `$DOSSIER_HOME/conversations.sqlite`), made on first use."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_home() / STORE_FILE
        self._file = SqliteFile(self.path, _SCHEMA)

    def create(self, owner: str, domain: str, title: str = "") -> Conversation:
        stamp = now()
        conversation = Conversation(uuid.uuid4().hex, domain, title, stamp, stamp)
        with self._file.write() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM conversations WHERE owner = ?", (owner,)).fetchone()
            if count >= MAX_CONVERSATIONS:
                raise ConversationLimit(f"this owner has {count} conversations, the most kept; delete some first")
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                       (conversation.id, owner, domain, title, stamp, stamp))
        return conversation

    def list(self, owner: str) -> list[Conversation]:
        """The owner's conversations, the most recently updated first."""
        with self._file.read() as db:
            rows = db.execute(
                "SELECT c.id, c.domain, c.title, c.created, c.updated, (SELECT COUNT(*) FROM turns t WHERE "
                "t.conversation_id = c.id) FROM conversations c WHERE c.owner = ? ORDER BY c.updated DESC, "
                "c.rowid DESC", (owner,)).fetchall()
        return [Conversation(*row) for row in rows]

    def get(self, owner: str, id_: str) -> Conversation | None:
        with self._file.read() as db:
            return self._get(db, owner, id_)

    def turns(self, owner: str, id_: str) -> list[Turn] | None:
        """The turns in order; None when the owner has no such conversation."""
        with self._file.read() as db:
            if self._get(db, owner, id_) is None:
                return None
            rows = db.execute("SELECT question, answer, created FROM turns WHERE conversation_id = ? ORDER BY n",
                              (id_,)).fetchall()
        return [Turn(question, json.loads(answer), created) for question, answer, created in rows]

    def delete(self, owner: str, id_: str) -> bool:
        with self._file.write() as db:
            if db.execute("DELETE FROM conversations WHERE owner = ? AND id = ?", (owner, id_)).rowcount == 0:
                return False
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (id_,))
        return True

    def append(self, owner: str, id_: str, question: str, answer: dict[str, Any]) -> bool:
        """Add a turn; the first one names an untitled conversation. False when the conversation is gone (deleted
        while the answer was being made)."""
        stamp = now()
        with self._file.write() as db:
            conversation = self._get(db, owner, id_)
            if conversation is None:
                return False
            if conversation.turns >= MAX_TURNS:
                raise ConversationLimit(f"conversation {id_} has {conversation.turns} turns, the most kept")
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                       (id_, conversation.turns, question, json.dumps(answer, ensure_ascii=False), stamp))
            title = conversation.title or default_title(question)
            db.execute("UPDATE conversations SET updated = ?, title = ? WHERE id = ?", (stamp, title, id_))
        return True

    @staticmethod
    def _get(db: sqlite3.Connection, owner: str, id_: str) -> Conversation | None:
        row = db.execute(
            "SELECT c.id, c.domain, c.title, c.created, c.updated, (SELECT COUNT(*) FROM turns t WHERE "
            "t.conversation_id = c.id) FROM conversations c WHERE c.owner = ? AND c.id = ?", (owner, id_)).fetchone()
        return Conversation(*row) if row else None
