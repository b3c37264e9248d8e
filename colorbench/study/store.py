"""The study database: SQLite in WAL mode, one transaction per judgment.

Durability: ``journal_mode=WAL`` lets readers (statistics, exports) run while
participants write. ``synchronous=FULL`` makes every commit fsync the WAL before
it returns; with ``NORMAL`` a committed transaction survives a crash of the
process (the WAL is in the OS page cache) but may be lost on power failure or an
OS crash. A judgment is acknowledged to the participant only after its commit has
returned, so FULL is what makes "acknowledged" mean "on disk". It costs one fsync
(a few milliseconds) per judgment, nothing next to a human's second per answer.

Integrity: ``judgments.trial_id`` is UNIQUE, so a second judgment of a trial is
refused by the database itself, whatever the application does; the check that a
trial is the participant's current one and the insert run in one
``BEGIN IMMEDIATE`` transaction, so two racing answers cannot both pass.

Schema versioning: ``PRAGMA user_version`` holds the schema version; migrations
in :data:`MIGRATIONS` run in order inside a transaction; a database newer than
this code is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from .._sqlite import immediate_transaction

__all__ = ["Store", "Refused", "SCHEMA_VERSION", "TrialRow"]

SCHEMA_VERSION = 1

MIGRATIONS: Dict[int, Sequence[str]] = {
    1: (
        """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE studies (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            stimulus_key TEXT NOT NULL,
            config_json TEXT NOT NULL,
            created_at REAL NOT NULL)""",
        """CREATE TABLE participants (
            id TEXT PRIMARY KEY,
            study_id TEXT NOT NULL REFERENCES studies(id),
            ip_hash TEXT NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL,
            consented INTEGER NOT NULL CHECK (consented = 1),
            started_at REAL NOT NULL,
            ended_at REAL)""",
        """CREATE INDEX participants_ip ON participants(ip_hash, started_at)""",
        """CREATE TABLE trials (
            id TEXT PRIMARY KEY,
            participant_id TEXT NOT NULL REFERENCES participants(id),
            idx INTEGER NOT NULL,
            phase TEXT NOT NULL CHECK (phase IN ('practice', 'test')),
            kind TEXT NOT NULL CHECK (kind IN ('model', 'vigilance')),
            model TEXT NOT NULL,
            image_id TEXT NOT NULL,
            real_stim TEXT NOT NULL,
            fake_stim TEXT NOT NULL,
            fake_side TEXT NOT NULL CHECK (fake_side IN ('left', 'right')),
            served_at REAL,
            UNIQUE (participant_id, idx))""",
        """CREATE TABLE judgments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            trial_id TEXT NOT NULL UNIQUE REFERENCES trials(id),
            participant_id TEXT NOT NULL REFERENCES participants(id),
            choice TEXT NOT NULL CHECK (choice IN ('left', 'right')),
            correct INTEGER NOT NULL CHECK (correct IN (0, 1)),
            response_ms REAL NOT NULL,
            created_at REAL NOT NULL,
            flags TEXT NOT NULL DEFAULT '')""",
        """CREATE INDEX judgments_participant ON judgments(participant_id, created_at)""",
    ),
}


class Refused(Exception):
    """A vote or session request the server will not accept; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TrialRow:
    id: str
    participant_id: str
    idx: int
    phase: str
    kind: str
    model: str
    image_id: str
    real_stim: str
    fake_stim: str
    fake_side: str
    served_at: Optional[float]


_TRIAL_COLS = "id, participant_id, idx, phase, kind, model, image_id, real_stim, fake_stim, fake_side, served_at"


class Store:
    """The study database at ``path`` (created and migrated on first use).

    Connections are per thread (Gradio runs handlers in a thread pool); each write
    is one ``BEGIN IMMEDIATE ... COMMIT``.

    Args:
        path: the SQLite file.
        synchronous: ``"FULL"`` (default, see the module docstring) or ``"NORMAL"``.
        busy_timeout_ms: how long a writer waits for the lock before failing.
    """

    def __init__(self, path: Path, synchronous: str = "FULL", busy_timeout_ms: int = 30_000) -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._init_lock = threading.Lock()
        self._ready = False
        self._salt: Optional[str] = None

    # -- connections ----------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute(f"PRAGMA synchronous = {self.synchronous}")
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (the schema is migrated on first use)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._open()
            self._local.con = con
        if not self._ready:
            with self._init_lock:
                if not self._ready:
                    self._migrate(con)
                    self._ready = True
        return con

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any exception)."""
        con = self.connection()
        with immediate_transaction(con):
            yield con

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {version}; this code knows up to {SCHEMA_VERSION}")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v]:
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version = {v}")
            if con.execute("SELECT 1 FROM meta WHERE key = 'salt'").fetchone() is None:
                con.execute("INSERT INTO meta VALUES ('salt', ?)", (secrets.token_hex(16),))
                con.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(time.time()),))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self.connection().execute("PRAGMA user_version").fetchone()[0])

    # -- identities -----------------------------------------------------------
    def ip_hash(self, ip: Optional[str]) -> str:
        """Salted SHA-256 of an IP address (the salt is random per database, never exported)."""
        if self._salt is None:
            self._salt = self.connection().execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0]
        return hashlib.sha256(f"{self._salt}|{ip or ''}".encode()).hexdigest()[:32]

    # -- studies and participants ---------------------------------------------
    def ensure_study(self, study_id: str, name: str, stimulus_key: str, config: Dict[str, Any]) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR IGNORE INTO studies VALUES (?, ?, ?, ?, ?)",
                        (study_id, name, stimulus_key, json.dumps(config, sort_keys=True), time.time()))

    def sessions_from_ip(self, ip_hash: str, since: float) -> int:
        row = self.connection().execute(
            "SELECT COUNT(*) FROM participants WHERE ip_hash = ? AND started_at >= ?", (ip_hash, since)).fetchone()
        return int(row[0])

    def participants_per_model(self, study_id: str) -> Dict[str, int]:
        rows = self.connection().execute(
            "SELECT model, COUNT(*) FROM participants WHERE study_id = ? GROUP BY model", (study_id,)).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def create_participant(self, participant: Dict[str, Any], trials: List[Dict[str, Any]], *,
                           max_sessions_per_ip: Optional[int] = None, window_s: float = 3600.0) -> None:
        """Insert a participant and all their trials atomically, after the per-IP session limit."""
        with self.transaction() as con:
            if max_sessions_per_ip is not None:
                n = con.execute("SELECT COUNT(*) FROM participants WHERE ip_hash = ? AND started_at >= ?",
                                (participant["ip_hash"], participant["started_at"] - window_s)).fetchone()[0]
                if n >= max_sessions_per_ip:
                    raise Refused("rate_ip_sessions", "Too many sessions from your network in the last hour; "
                                                      "please try again later.")
            con.execute("INSERT INTO participants (id, study_id, ip_hash, user_agent, model, consented, started_at) "
                        "VALUES (:id, :study_id, :ip_hash, :user_agent, :model, 1, :started_at)", participant)
            con.executemany(
                "INSERT INTO trials (id, participant_id, idx, phase, kind, model, image_id, real_stim, fake_stim, "
                "fake_side) VALUES (:id, :participant_id, :idx, :phase, :kind, :model, :image_id, :real_stim, "
                ":fake_stim, :fake_side)", trials)

    def participant(self, pid: str) -> Optional[sqlite3.Row]:
        return self.connection().execute("SELECT * FROM participants WHERE id = ?", (pid,)).fetchone()

    def trial(self, trial_id: str) -> Optional[TrialRow]:
        row = self.connection().execute(f"SELECT {_TRIAL_COLS} FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return TrialRow(*row) if row else None

    def serve_next(self, pid: str, now: float) -> Optional[TrialRow]:
        """The participant's first unanswered trial, its ``served_at`` set if it was never served
        (a reload does not restart the clock). None when every trial is answered."""
        with self.transaction() as con:
            row = con.execute(
                f"SELECT {_TRIAL_COLS} FROM trials t WHERE participant_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM judgments j WHERE j.trial_id = t.id) ORDER BY idx LIMIT 1", (pid,)).fetchone()
            if row is None:
                return None
            trial = TrialRow(*row)
            if trial.served_at is None:
                con.execute("UPDATE trials SET served_at = ? WHERE id = ?", (now, trial.id))
                trial = TrialRow(*tuple(row)[:-1], now)
            return trial

    def finish(self, pid: str, now: float) -> None:
        with self.transaction() as con:
            con.execute("UPDATE participants SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (now, pid))

    # -- judgments ------------------------------------------------------------
    def answer(self, pid: str, trial_id: str, choice: str, now: float, *, min_response_ms: float = 0.0,
               max_per_minute: Optional[int] = None, max_per_ip_minute: Optional[int] = None) -> Dict[str, Any]:
        """Validate and record one judgment in a single transaction; returns the stored row.

        Refused (nothing written) when: the choice is not left/right, the participant is
        unknown or finished, the trial is not theirs, was never served, is not their
        current trial, was already judged (also enforced by the UNIQUE constraint), or a
        rate limit is hit.
        """
        if choice not in ("left", "right"):
            raise Refused("bad_choice", "The answer must be 'left' or 'right'.")
        with self.transaction() as con:
            p = con.execute("SELECT ip_hash, ended_at FROM participants WHERE id = ?", (pid,)).fetchone()
            if p is None:
                raise Refused("unknown_participant", "Unknown session; please start again.")
            row = con.execute(f"SELECT {_TRIAL_COLS} FROM trials WHERE id = ?", (trial_id,)).fetchone()
            if row is None or row["participant_id"] != pid:
                raise Refused("unknown_trial", "This pair does not belong to your session.")
            trial = TrialRow(*row)
            if con.execute("SELECT 1 FROM judgments WHERE trial_id = ?", (trial_id,)).fetchone():
                raise Refused("already_answered", "This pair has already been answered.")
            if trial.served_at is None:
                raise Refused("not_served", "This pair has not been shown yet.")
            current = con.execute(
                "SELECT MIN(idx) FROM trials t WHERE participant_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM judgments j WHERE j.trial_id = t.id)", (pid,)).fetchone()[0]
            if current != trial.idx:
                raise Refused("not_current", "This is not the pair currently shown.")
            if max_per_minute is not None:
                n = con.execute("SELECT COUNT(*) FROM judgments WHERE participant_id = ? AND created_at >= ?",
                                (pid, now - 60.0)).fetchone()[0]
                if n >= max_per_minute:
                    raise Refused("rate_session", "You are answering faster than the study allows; please slow down.")
            if max_per_ip_minute is not None:
                n = con.execute(
                    "SELECT COUNT(*) FROM judgments j JOIN participants p ON p.id = j.participant_id "
                    "WHERE p.ip_hash = ? AND j.created_at >= ?", (p["ip_hash"], now - 60.0)).fetchone()[0]
                if n >= max_per_ip_minute:
                    raise Refused("rate_ip", "Too many answers from your network right now; please slow down.")
            response_ms = max(0.0, (now - trial.served_at) * 1000.0)
            flags = "fast" if response_ms < min_response_ms else ""
            correct = int(choice == trial.fake_side)
            try:
                cur = con.execute(
                    "INSERT INTO judgments (trial_id, participant_id, choice, correct, response_ms, created_at, flags) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", (trial_id, pid, choice, correct, response_ms, now, flags))
            except sqlite3.IntegrityError:
                raise Refused("already_answered", "This pair has already been answered.") from None
            return {"id": cur.lastrowid, "trial_id": trial_id, "participant_id": pid, "choice": choice,
                    "correct": correct, "response_ms": response_ms, "created_at": now, "flags": flags,
                    "phase": trial.phase, "kind": trial.kind, "model": trial.model, "image_id": trial.image_id,
                    "idx": trial.idx}

    def score(self, pid: str) -> Tuple[int, int]:
        """(correct, answered) over the participant's test pairs."""
        row = self.connection().execute(
            "SELECT COALESCE(SUM(j.correct), 0), COUNT(*) FROM judgments j JOIN trials t ON t.id = j.trial_id "
            "WHERE j.participant_id = ? AND t.phase = 'test'", (pid,)).fetchone()
        return int(row[0]), int(row[1])

    # -- reading for statistics ------------------------------------------------
    def judgment_rows(self, study_id: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every judgment joined with its trial and participant (no IP hash)."""
        sql = ("SELECT j.id AS judgment_id, p.study_id, j.participant_id, j.trial_id, p.model AS session_model, t.idx, t.phase, "
               "t.kind, t.model, t.image_id, t.fake_side, j.choice, j.correct, j.response_ms, t.served_at, "
               "j.created_at, j.flags FROM judgments j JOIN trials t ON t.id = j.trial_id "
               "JOIN participants p ON p.id = j.participant_id")
        args: Tuple = ()
        if study_id:
            sql += " WHERE p.study_id = ?"
            args = (study_id,)
        sql += " ORDER BY j.id"
        return [dict(r) for r in self.connection().execute(sql, args).fetchall()]

    def study_ids(self) -> List[str]:
        return [r[0] for r in self.connection().execute("SELECT id FROM studies ORDER BY created_at").fetchall()]

    def count(self, table: str) -> int:
        if table not in ("studies", "participants", "trials", "judgments"):
            raise ValueError(table)
        return int(self.connection().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
