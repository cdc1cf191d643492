"""The results store of a sweep: one SQLite file, one row per finished cell.

``DIR/sweep.sqlite`` holds the sweep's fingerprint and, per finished cell, its record (JSON)
keyed by the cell's key. Only the process that drives the sweep writes it, one transaction
per cell as the cell finishes, so a sweep killed at any moment (even by SIGKILL) keeps
every cell that finished and never holds a partial or duplicated row (the key is the
primary key). Re-opening the store with the same sweep resumes it; a store written by a
different sweep is refused unless ``force=True``, which discards its cells.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from phaze.errors import ConfigError

__all__ = ["STORE_NAME", "SweepStore", "read_records"]

STORE_NAME = "sweep.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY, position INTEGER NOT NULL, attempt INTEGER NOT NULL,
    record TEXT NOT NULL
);
"""


class SweepStore:
    """Finished cells of one sweep in ``directory/sweep.sqlite``.

    Parameters
    ----------
    directory : path
        Output directory (created if missing).
    fingerprint : str
        The sweep's fingerprint (:attr:`phaze.sweeps.SweepSpec.fingerprint`).
    keys : sequence of str
        Keys of the sweep's cells.
    force : bool
        Accept a store written by a different sweep (a changed sweep file): its cells
        that are not in this sweep are discarded; those that are (same key, so the same
        search) are kept.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with SweepStore(d, "abc", keys=["k1", "k2"]) as store:
    ...         store.add("k1", 0, {"throughput_samples_per_s": 1.5})
    ...         store.add("k1", 0, {"throughput_samples_per_s": 9.9})  # already there
    ...         store.records()
    True
    False
    {'k1': {'throughput_samples_per_s': 1.5}}
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        fingerprint: str,
        keys: Sequence[str],
        force: bool = False,
    ) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"output directory {str(directory)!r} cannot be created: {exc.strerror or exc}"
            ) from None
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise ConfigError(f"output directory {str(directory)!r} is not writable")
        self.path = self.directory / STORE_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        found = self._meta("fingerprint")
        if found is not None and found != fingerprint:
            if not force:
                done = self.count()
                self._db.close()
                raise ConfigError(
                    f"{self.path} holds {done} cell(s) of a different sweep (the sweep file "
                    f"changed; it now has {len(keys)} cells); rerun with --force to discard "
                    "them, or choose another --out"
                )
            self._db.execute(
                "DELETE FROM cells WHERE key NOT IN (SELECT value FROM json_each(?))",
                (json.dumps(list(keys)),),
            )
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (fingerprint,))
        self.attempt = int(self._meta("attempts") or 0) + 1
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('attempts', ?)", (str(self.attempt),))

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(self, key: str, position: int, record: dict) -> bool:
        """Store a finished cell in one transaction; returns False if it was there."""
        text = json.dumps(record, sort_keys=True, allow_nan=False)
        before = self._db.total_changes
        self._db.execute("BEGIN")
        self._db.execute(
            "INSERT OR IGNORE INTO cells VALUES (?, ?, ?, ?)",
            (key, int(position), self.attempt, text),
        )
        self._db.execute("COMMIT")
        return self._db.total_changes > before

    def records(self) -> dict[str, dict]:
        """Every stored record by cell key."""
        rows = self._db.execute("SELECT key, record FROM cells ORDER BY position").fetchall()
        return {k: json.loads(r) for k, r in rows}

    def count(self) -> int:
        """Number of stored cells."""
        return int(self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])


def read_records(directory: str | os.PathLike) -> list[dict]:
    """The records stored in ``directory/sweep.sqlite``, by position in the sweep
    (reads only; for ``phaze sweep --summary``)."""
    path = Path(directory) / STORE_NAME
    if not path.is_file():
        raise ConfigError(f"{str(directory)!r} holds no sweep results ({STORE_NAME} not found)")
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT record FROM cells ORDER BY position").fetchall()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a sweep results store ({exc})") from None
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]
