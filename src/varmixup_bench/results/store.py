"""The results store: one row per evaluation record in <workdir>/results.sqlite (SQLite, WAL, one transaction per
record), so a crash or a torn write is rolled back by the database and never half-read; JSONL stays the export
and import format, and an older workdir's results.jsonl is imported once, on first open."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from base64 import b64decode, b64encode
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from varmixup_bench.core.atomic import file_lock
from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.record import ESSENTIAL_FIELDS, REQUIRED_FIELDS

DB_FILE = "results.sqlite"
LEGACY_FILE = "results.jsonl"  # the store before SQLite: imported once, then renamed to results.jsonl.imported
LEGACY_RETIRED_FILE = "retired.jsonl"
SCHEMA_VERSION = 1  # the database layout (the record's own schema: results.record.SCHEMA_VERSION)
BUSY_TIMEOUT_S = 120.0  # a writer waits this long for another writer's transaction before giving up

RECORD_FIELDS = REQUIRED_FIELDS  # the fields every record has: the schema lives in results.record

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- insertion order: "latest" means the highest id
    digest TEXT NOT NULL UNIQUE,            -- sha256 of the canonical JSON: importing a record twice keeps one
    eval_hash TEXT,
    dataset TEXT,
    defense TEXT,
    attack TEXT,
    timestamp TEXT,
    body TEXT NOT NULL,                     -- the record without per_image, canonical JSON
    per_image BLOB,                         -- the per-image outcomes, raw bytes (see pack_per_image)
    retired_reason TEXT,                    -- set by `bench retire`: the record leaves every table and reuse
    retired_at TEXT
);
CREATE INDEX IF NOT EXISTS records_eval_hash ON records (eval_hash);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def canonical_json(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, default=str, separators=(",", ":"))


def record_digest(record: dict[str, Any]) -> str:
    """The identity of a record's content (retirement aside): the same evaluation stored twice is one row."""
    rec = {k: v for k, v in record.items() if k != "retired_reason"}
    return hashlib.sha256(canonical_json(rec).encode()).hexdigest()


# ---- per-image outcomes: the record keeps base64 text (JSON-friendly); the database keeps the raw bytes ----

def pack_per_image(per_image: Any) -> bytes | None:
    """A per_image dict as bytes: a JSON header (scalars, and which keys were base64 text of what length), then
    the decoded bytes of those keys back to back: a third smaller than the text, and restored exactly."""
    if per_image is None:
        return None
    if not isinstance(per_image, dict):
        return b"J" + canonical_json({"value": per_image}).encode()
    header: dict[str, Any] = {"scalars": {}, "arrays": []}
    chunks = []
    for key in sorted(per_image):
        value = per_image[key]
        raw = None
        if isinstance(value, str):
            try:
                raw = b64decode(value, validate=True)
            except ValueError:
                raw = None
            if raw is not None and b64encode(raw).decode("ascii") != value:
                raw = None  # not canonical base64: keep the text as it is
        if raw is None:
            header["scalars"][key] = value
        else:
            header["arrays"].append([key, len(raw)])
            chunks.append(raw)
    head = canonical_json(header).encode()
    return b"B" + struct.pack("<I", len(head)) + head + b"".join(chunks)


def unpack_per_image(blob: bytes | None) -> Any:
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] == b"J":
        return json.loads(blob[1:])["value"]
    (size,) = struct.unpack("<I", blob[1:5])
    header = json.loads(blob[5:5 + size])
    out = dict(header["scalars"])
    pos = 5 + size
    for key, length in header["arrays"]:
        out[key] = b64encode(blob[pos:pos + length]).decode("ascii")
        pos += length
    return out


class ResultStore:
    """One evaluation record per row of <workdir>/results.sqlite. Each append is one transaction (fsynced, WAL):
    a crash leaves the record either wholly stored or absent, and any number of processes may append at once."""

    def __init__(self, workdir: Path | str) -> None:
        self.workdir = Path(workdir)
        self.path = self.workdir / DB_FILE
        self.legacy_path = self.workdir / LEGACY_FILE
        self.legacy_retired_path = self.workdir / LEGACY_RETIRED_FILE
        self.quarantine_path = self.workdir / "results.quarantine.jsonl"
        self.lock_path = self.workdir / ".results.lock"

    # ---- connection ----

    @contextmanager
    def _connect(self, create: bool = True) -> Iterator[sqlite3.Connection]:
        if not create and not self.path.exists() and not self.legacy_path.exists():
            yield None  # type: ignore[misc]  # nothing stored yet, nothing to create
            return
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"cannot create workdir {self.workdir}: {exc.strerror}") from None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        try:
            with closing(conn):
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=FULL")  # a committed record survives a power loss
                    conn.executescript(_SCHEMA)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    self._import_legacy(conn)
                    yield conn
                except sqlite3.DatabaseError as exc:
                    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                        raise BenchError(f"{self.path}: the results database stayed locked by another process "
                                         f"for {BUSY_TIMEOUT_S:.0f} s ({exc}); try again") from None
                    raise self._damaged(exc) from None
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> BenchError:
        return BenchError(
            f"{self.path} is not a readable results database ({exc}). Nothing was read or written. To recover: "
            f"move it aside, then `sqlite3 {self.path.name}.bad .recover | sqlite3 {self.path.name}` in the "
            f"workdir, or `bench import YOUR-LAST-EXPORT.jsonl --workdir {self.workdir}` (from `bench export`)")

    # ---- writing ----

    def append(self, record: dict[str, Any]) -> bool:
        """Store one record in one transaction. Returns False when the identical record was already stored."""
        with self._connect() as conn:
            return self._insert(conn, [record]) == 1

    def extend(self, records: Iterable[dict[str, Any]]) -> int:
        """Store many records in one transaction (all or none); returns how many were new."""
        with self._connect() as conn:
            return self._insert(conn, list(records))

    @staticmethod
    def _row(record: dict[str, Any]) -> tuple:
        reason = record.get("retired_reason")
        rec = {k: v for k, v in record.items() if k != "retired_reason"}
        body = {k: v for k, v in rec.items() if k != "per_image"}
        return (record_digest(rec), rec.get("eval_hash"), rec.get("dataset"), rec.get("defense"), rec.get("attack"),
                str(rec.get("timestamp", "")), canonical_json(body), pack_per_image(rec.get("per_image")),
                reason, _now() if reason else None)

    def _insert(self, conn: sqlite3.Connection, records: list[dict[str, Any]]) -> int:
        rows = [self._row(r) for r in records]  # serialise first: a record that cannot be stored stores nothing
        conn.execute("BEGIN IMMEDIATE")
        try:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO records (digest, eval_hash, dataset, defense, attack, timestamp, body, "
                "per_image, retired_reason, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            added = conn.total_changes - before
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return added

    # ---- reading ----

    def _select(self, where: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self._connect(create=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(f"SELECT body, per_image, retired_reason FROM records WHERE {where} ORDER BY id",
                                args).fetchall()
        out = []
        for body, per_image, reason in rows:
            rec = json.loads(body)
            if per_image is not None:
                rec["per_image"] = unpack_per_image(per_image)
            if reason is not None:
                rec["retired_reason"] = reason
            out.append(rec)
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every current (not retired) record, oldest first."""
        return self._select("retired_reason IS NULL")

    def retired(self) -> list[dict[str, Any]]:
        """The records `retire` took out, each with its `retired_reason`."""
        return self._select("retired_reason IS NOT NULL")

    def latest(self, eval_hash: str) -> dict[str, Any] | None:
        """The latest current record with this evaluation key (results.record.evaluation_key), or None."""
        found = self._select("retired_reason IS NULL AND eval_hash = ?", (eval_hash,))
        return found[-1] if found else None

    def count(self) -> int:
        with self._connect(create=False) as conn:
            return 0 if conn is None else conn.execute(
                "SELECT COUNT(*) FROM records WHERE retired_reason IS NULL").fetchone()[0]

    def retire(self, match: Callable[[dict[str, Any]], bool], reason: str) -> list[dict[str, Any]]:
        """Mark the records `match` selects as retired with `reason`, in one transaction: an evaluation found wrong
        after it was stored (an attack fixed since) leaves every table and is never reused, and the store keeps it
        for the record (`bench export --retired`). Returns the retired records."""
        if not reason.strip():
            raise ValueError("retiring records needs a reason")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute("SELECT id, body, per_image FROM records WHERE retired_reason IS NULL "
                                    "ORDER BY id").fetchall()
                gone = []
                for rid, body, per_image in rows:
                    rec = json.loads(body)
                    if per_image is not None:
                        rec["per_image"] = unpack_per_image(per_image)
                    if match(rec):
                        gone.append((rid, {**rec, "retired_reason": reason}))
                conn.executemany("UPDATE records SET retired_reason = ?, retired_at = ? WHERE id = ?",
                                 [(reason, _now(), rid) for rid, _ in gone])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return [rec for _, rec in gone]

    # ---- JSONL export / import ----

    def export_jsonl(self, path: Path, retired: bool = False) -> int:
        """Write the current records (with `retired`, also the retired ones, each with its `retired_reason`) as
        JSON lines to `path`, atomically. Returns how many."""
        from varmixup_bench.core.atomic import atomic_write_text

        recs = self.records() + (self.retired() if retired else [])
        atomic_write_text(Path(path), "".join(canonical_json(r) + "\n" for r in recs))
        return len(recs)

    def import_jsonl(self, path: Path, quarantine: Path | None = None) -> tuple[int, int, list[int]]:
        """Store every line of a JSONL file that parses as a record, in one transaction; a record already stored
        is kept once. Lines that do not parse, or are not records (a JSON object without the fields any table needs,
        record.ESSENTIAL_FIELDS), go to `quarantine` (default: <workdir>/results.quarantine.jsonl)
        with their line numbers. Returns (records read, records new, line numbers quarantined)."""
        with self._connect() as conn:
            return self._import_file(conn, Path(path), quarantine or self.quarantine_path, required=ESSENTIAL_FIELDS)

    def _import_file(self, conn: sqlite3.Connection, path: Path, quarantine: Path, reason: str | None = None,
                     required: tuple[str, ...] = ()) -> tuple[int, int, list[int]]:
        good, bad = [], []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                text = line.strip()
                if not text:
                    continue
                try:
                    rec = json.loads(text)
                    if not isinstance(rec, dict):
                        raise ValueError("not a JSON object")
                    if any(rec.get(k) is None for k in required):  # JSON, but no record a table can show
                        raise ValueError("not a record")
                except ValueError:
                    bad.append((number, line.rstrip("\n")))
                    continue
                if reason is not None and "retired_reason" not in rec:
                    rec["retired_reason"] = reason
                good.append(rec)
        if bad:
            with open(quarantine, "a", encoding="utf-8") as fh:
                for number, text in bad:
                    fh.write(canonical_json({"source": str(path), "line": number, "text": text}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        added = self._insert(conn, good)
        return len(good), added, [n for n, _ in bad]

    def _import_legacy(self, conn: sqlite3.Connection) -> None:
        """An older workdir's results.jsonl (and retired.jsonl) into the database, once, under the store's lock:
        then renamed to *.imported so that no later open imports it again."""
        if not self.legacy_path.exists() and not self.legacy_retired_path.exists():
            return
        from varmixup_bench.core.progress import stderr_console

        with file_lock(self.lock_path):
            for path, reason in ((self.legacy_path, None), (self.legacy_retired_path, "retired before the store "
                                                             "moved to SQLite (reason not kept)")):
                if not path.exists():
                    continue  # another process imported it while we waited for the lock
                read, added, bad = self._import_file(conn, path, self.quarantine_path, reason)
                os.replace(path, path.with_name(path.name + ".imported"))
                msg = (f"imported {read} record(s) of {path} into {self.path} ({added} new); the file is kept as "
                       f"{path.name}.imported")
                if bad:
                    msg += (f". WARNING: {len(bad)} line(s) that do not parse (line {', '.join(map(str, bad[:10]))}"
                            f"{'…' if len(bad) > 10 else ''}: a torn write) were moved to {self.quarantine_path}")
                stderr_console.print(msg, highlight=False, soft_wrap=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
