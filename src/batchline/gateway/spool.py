"""Store-and-forward: readings kept on the gateway's disk while the database is away (issue 15).

A SQLite file of its own (``GATEWAY_SPOOL_DIR/<gateway>.spool.sqlite3``, the standard library's
``sqlite3``, not Django's database), so it works exactly when the database does not. Rows go in
as the writer could not store them and come out oldest first once the database is back; a row is
removed from the spool only after the database committed it, and storing is idempotent, so a
crash in between forwards it again and stores nothing twice.

Bounded: past ``max_rows`` the **oldest** rows are dropped. The newest are what a running batch
and the engineers need first when the database returns, and a gap at the start of an outage is as
visible in a chart as one at its end. Every dropped row is counted in the file itself (so a
restart does not forget it), logged, shown on the engineers' page and, once the database is back,
written to the audit trail by the gateway: nothing is lost silently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import AT, GATEWAY_TIME, SOURCE_TIME, STORED_AT, Row

log = logging.getLogger("batchline.gateway")

_TIMES = (AT, SOURCE_TIME, GATEWAY_TIME, STORED_AT)


def _encode(row: Row) -> str:
    out: list[Any] = list(row)
    out[0] = row[0].hex()
    for i in _TIMES:
        out[i] = row[i].isoformat() if row[i] is not None else None
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _decode(text: str) -> Row:
    values: list[Any] = json.loads(text)
    values[0] = bytes.fromhex(values[0])
    for i in _TIMES:
        values[i] = dt.datetime.fromisoformat(values[i]) if values[i] is not None else None
    return tuple(values)


@dataclass(frozen=True)
class Losses:
    dropped: int  # over the spool's life
    reported: int  # of those, written to the audit trail already
    last_at: dt.datetime | None

    @property
    def unreported(self) -> int:
        return self.dropped - self.reported


class Spool:
    def __init__(self, path: Path | str, *, max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError("a spool holds at least one reading")
        self.path = Path(path)
        self.max_rows = max_rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # FULL: while the database is away this file holds the only copy of the readings.
        self._db.executescript(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
            "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, row TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS losses (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "dropped INTEGER NOT NULL, reported INTEGER NOT NULL, last_at TEXT);"
            "INSERT OR IGNORE INTO losses VALUES (1, 0, 0, NULL);"
        )
        self._count = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, rows: Sequence[Row], *, now: dt.datetime | None = None) -> int:
        """Keep ``rows``; past the bound drop the oldest. Returns how many were dropped now."""
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO spool (row) VALUES (?)", [(_encode(r),) for r in rows])
                over = self._count + len(rows) - self.max_rows
                if over > 0:
                    self._db.execute(
                        "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)", (over,)
                    )
                    self._db.execute(
                        "UPDATE losses SET dropped = dropped + ?, last_at = ? WHERE id = 1",
                        (over, (now or dt.datetime.now(dt.UTC)).isoformat()),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            dropped = max(over, 0)
            self._count += len(rows) - dropped
        if dropped:
            log.error(
                "gateway spool full (%s readings): the %s oldest readings were dropped and are lost",
                self.max_rows,
                dropped,
            )
        return dropped

    def peek(self, limit: int) -> tuple[int, list[Row]]:
        """The oldest ``limit`` rows and the id of the last of them (0 when empty)."""
        with self._lock:
            found = self._db.execute("SELECT id, row FROM spool ORDER BY id LIMIT ?", (limit,)).fetchall()
        return (found[-1][0] if found else 0), [_decode(text) for _id, text in found]

    def remove_upto(self, last_id: int) -> None:
        """Forget the rows up to ``last_id``: the database has committed them."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
            self._count -= cursor.rowcount

    def losses(self) -> Losses:
        with self._lock:
            dropped, reported, last_at = self._db.execute(
                "SELECT dropped, reported, last_at FROM losses WHERE id = 1"
            ).fetchone()
        return Losses(int(dropped), int(reported), dt.datetime.fromisoformat(last_at) if last_at else None)

    def losses_reported(self, upto: int) -> None:
        with self._lock:
            self._db.execute("UPDATE losses SET reported = ? WHERE id = 1", (upto,))
