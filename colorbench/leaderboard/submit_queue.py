"""The submissions queue: one SQLite table (WAL journal) of submissions and their status.

Statuses move one way: ``PENDING -> RUNNING -> FINISHED | FAILED`` (a FAILED row
keeps its reason). A worker claims the oldest PENDING row inside an immediate
transaction, so two workers never run the same submission. Nothing here touches
the network or loads a model.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from .._sqlite import immediate_transaction

__all__ = ["PENDING", "RUNNING", "FINISHED", "FAILED", "STATUSES", "Submission", "SubmissionQueue"]

PENDING, RUNNING, FINISHED, FAILED = "PENDING", "RUNNING", "FINISHED", "FAILED"
STATUSES = (PENDING, RUNNING, FINISHED, FAILED)
KINDS = ("checkpoint", "hub", "predictions")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN {KINDS!r}),
    submitter TEXT NOT NULL,
    model_name TEXT NOT NULL,
    arch TEXT,
    hub_id TEXT,
    dataset TEXT,
    content_hash TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    file_path TEXT NOT NULL,
    card TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{{}}',
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}),
    reason TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    results TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS submissions_status ON submissions(status, id);
CREATE INDEX IF NOT EXISTS submissions_submitter ON submissions(submitter, created_at);
CREATE INDEX IF NOT EXISTS submissions_hash ON submissions(content_hash);
"""


@dataclass(frozen=True)
class Submission:
    """One row of the queue.

    Attributes:
        kind: ``checkpoint`` | ``hub`` | ``predictions``.
        content_hash: sha256 identifying the content (tensors of a checkpoint, bytes of a zip).
        file_sha256: sha256 of the stored file's bytes.
        file_path: the stored file (under the data dir, named by its hash).
        extra: JSON-able details (card fields, dataset fingerprint, ...).
        results: results JSON paths written by the worker.
        created_at, started_at, finished_at: UNIX seconds.
    """

    id: int
    kind: str
    submitter: str
    model_name: str
    arch: Optional[str]
    hub_id: Optional[str]
    dataset: Optional[str]
    content_hash: str
    file_sha256: str
    file_path: str
    card: str
    status: str
    reason: Optional[str]
    created_at: float
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    results: List[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Submission":
        d = dict(row)
        d["extra"] = json.loads(d.get("extra") or "{}")
        d["results"] = json.loads(d.get("results") or "[]")
        return cls(**d)

    def public(self) -> Dict[str, Any]:
        """What may be shown to anyone (no file paths)."""
        return {
            "id": self.id, "kind": self.kind, "submitter": self.submitter, "model": self.model_name,
            "arch": self.arch or "", "hub_id": self.hub_id or "", "dataset": self.dataset or "",
            "status": self.status, "reason": self.reason or "", "hash": self.content_hash[:12],
            "submitted": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.created_at)) + "Z",
        }


class SubmissionQueue:
    """The queue database.

    Args:
        path: the SQLite file (created with its folder).
        timeout: seconds to wait for a lock held by another process.
    """

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._local = threading.local()
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout = %d" % int(self._timeout * 1000))
            con.execute("PRAGMA synchronous = NORMAL")
            self._local.con = con
        return con

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction."""
        con = self._connect()
        with immediate_transaction(con):
            yield con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- writes ---------------------------------------------------------------
    def add(self, *, kind: str, submitter: str, model_name: str, content_hash: str, file_sha256: str,
            file_path: str, card: str, arch: Optional[str] = None, hub_id: Optional[str] = None,
            dataset: Optional[str] = None, extra: Optional[Dict[str, Any]] = None,
            now: Optional[float] = None, check=None) -> Submission:
        """Insert a PENDING row. ``check(con)`` runs first inside the same write transaction
        (rate limit and duplicate checks see a consistent table) and may raise to refuse."""
        now = time.time() if now is None else now
        with self._tx() as con:
            if check is not None:
                check(con)
            cur = con.execute(
                "INSERT INTO submissions (kind, submitter, model_name, arch, hub_id, dataset, content_hash, "
                "file_sha256, file_path, card, extra, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (kind, submitter, model_name, arch, hub_id, dataset, content_hash, file_sha256, file_path, card,
                 json.dumps(extra or {}, sort_keys=True), PENDING, now))
            sid = cur.lastrowid
        return self.get(sid)

    def claim(self, now: Optional[float] = None) -> Optional[Submission]:
        """Atomically move the oldest PENDING submission to RUNNING and return it (None if none)."""
        now = time.time() if now is None else now
        with self._tx() as con:
            row = con.execute("SELECT id FROM submissions WHERE status=? ORDER BY id LIMIT 1", (PENDING,)).fetchone()
            if row is None:
                return None
            con.execute("UPDATE submissions SET status=?, started_at=? WHERE id=?", (RUNNING, now, row["id"]))
        return self.get(row["id"])

    def finish(self, sid: int, results: List[str], now: Optional[float] = None) -> None:
        self._end(sid, FINISHED, None, results, now)

    def fail(self, sid: int, reason: str, now: Optional[float] = None) -> None:
        self._end(sid, FAILED, reason or "unknown error", [], now)

    def _end(self, sid: int, status: str, reason: Optional[str], results: List[str], now: Optional[float]) -> None:
        now = time.time() if now is None else now
        with self._tx() as con:
            cur = con.execute("UPDATE submissions SET status=?, reason=?, results=?, finished_at=? "
                              "WHERE id=? AND status=?", (status, reason, json.dumps(results), now, sid, RUNNING))
            if cur.rowcount != 1:
                raise RuntimeError(f"submission {sid} is not RUNNING; cannot mark it {status}")

    def requeue_stale(self, older_than_s: float, now: Optional[float] = None) -> int:
        """Put RUNNING rows started more than ``older_than_s`` ago back to PENDING (a worker died)."""
        now = time.time() if now is None else now
        with self._tx() as con:
            cur = con.execute("UPDATE submissions SET status=?, started_at=NULL WHERE status=? AND started_at < ?",
                              (PENDING, RUNNING, now - older_than_s))
            return cur.rowcount

    # -- reads ----------------------------------------------------------------
    def get(self, sid: int) -> Submission:
        row = self._connect().execute("SELECT * FROM submissions WHERE id=?", (sid,)).fetchone()
        if row is None:
            raise KeyError(f"no submission {sid}")
        return Submission.from_row(row)

    def list(self, status: Optional[str] = None, limit: int = 1000) -> List[Submission]:
        """Newest first."""
        con = self._connect()
        if status:
            rows = con.execute("SELECT * FROM submissions WHERE status=? ORDER BY id DESC LIMIT ?", (status, limit))
        else:
            rows = con.execute("SELECT * FROM submissions ORDER BY id DESC LIMIT ?", (limit,))
        return [Submission.from_row(r) for r in rows.fetchall()]

    def counts(self) -> Dict[str, int]:
        rows = self._connect().execute("SELECT status, COUNT(*) AS n FROM submissions GROUP BY status").fetchall()
        out = {s: 0 for s in STATUSES}
        out.update({r["status"]: r["n"] for r in rows})
        return out
