"""On-disk result store of a search: resumable, append-only, crash-safe.

Evaluated rows are written to an SQLite database in the output directory as they are
computed, one transaction per batch, so a search killed at any moment (even by SIGKILL)
loses at most the batch in flight and never leaves a partial or duplicated row (the row key
is the primary key). The store remembers the arguments of the search that created it (a
*fingerprint*); reopening it with different arguments is refused unless ``force=True``,
which discards the old results.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from phaze.errors import ConfigError
from phaze.rows import ROW_FIELDS, ROW_FLOAT_FIELDS

__all__ = ["KEY_FIELDS", "ResultStore"]

#: Key columns of a stored row; the value columns are :data:`phaze.rows.ROW_FIELDS`.
KEY_FIELDS = ("model", "arch", "micro_batch_size", "hbm_bytes", "recompute")

_VALUE_COLUMNS = ", ".join(
    f"{f} {'REAL' if f in ROW_FLOAT_FIELDS else 'INTEGER'} NOT NULL" for f in ROW_FIELDS
)
_PLACEHOLDERS = ", ".join("?" * (len(KEY_FIELDS) + len(ROW_FIELDS)))
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    model TEXT NOT NULL, arch INTEGER NOT NULL, micro_batch_size INTEGER NOT NULL,
    hbm_bytes INTEGER NOT NULL, recompute INTEGER NOT NULL,
    {_VALUE_COLUMNS},
    PRIMARY KEY ({", ".join(KEY_FIELDS)})
);
"""


class ResultStore:
    """SQLite store of evaluated rows in ``directory/results.sqlite``.

    Parameters
    ----------
    directory : path
        Output directory (created if missing; must be writable).
    fingerprint : mapping
        JSON-serialisable description of the search arguments.
    force : bool
        Discard results of a search with a different fingerprint instead of refusing.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with ResultStore(d, {"model": "x"}) as store:
    ...         new = store.add("x", 1, 2**30, False, [3], {"throughput": [9.5],
    ...                   "time_per_batch_s": [1.0], "tensor_width": [1], "data_parallel": [4],
    ...                   "num_stages": [2], "bottleneck_stage": [0], "power_w": [80.0],
    ...                   "energy_per_sample_j": [8.4]})
    ...         store.load("x", 1, 2**30, False)["throughput"].tolist()
    [9.5]
    """

    def __init__(
        self, directory: str | os.PathLike[str], fingerprint: Mapping, force: bool = False
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
        self.path = self.directory / "results.sqlite"
        wanted = json.dumps(dict(fingerprint), sort_keys=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        if found is not None and found[0] != wanted:
            if not force:
                diff = _differences(json.loads(found[0]), json.loads(wanted))
                self._db.close()
                raise ConfigError(
                    f"{self.path} holds results of a different search "
                    f"(differs in: {diff}); rerun with --force to discard "
                    f"them, or choose another --out"
                )
            self._db.execute("DELETE FROM rows")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (wanted,))

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(
        self,
        model: str,
        mbs: int,
        hbm_bytes: int,
        recompute: bool,
        archs,
        values: Mapping[str, object],
    ) -> int:
        """Insert rows for ``archs`` in one transaction; existing keys are kept.

        Returns the number of new rows.
        """
        archs = np.asarray(archs, dtype=np.int64)
        cols = [np.asarray(values[f]) for f in ROW_FIELDS]
        key = (model, int(mbs), int(hbm_bytes), int(bool(recompute)))
        kinds = [float if f in ROW_FLOAT_FIELDS else int for f in ROW_FIELDS]
        rows = [
            (key[0], int(a), *key[1:], *(k(c[i]) for k, c in zip(kinds, cols)))
            for i, a in enumerate(archs.tolist())
        ]
        before = self._db.total_changes
        self._db.execute("BEGIN")
        self._db.executemany(f"INSERT OR IGNORE INTO rows VALUES ({_PLACEHOLDERS})", rows)
        self._db.execute("COMMIT")
        return self._db.total_changes - before

    def load(self, model: str, mbs: int, hbm_bytes: int, recompute: bool) -> dict[str, np.ndarray]:
        """Stored rows of one setting as arrays (``arch`` plus :data:`ROW_FIELDS`),
        sorted by architecture index."""
        cur = self._db.execute(
            "SELECT arch, " + ", ".join(ROW_FIELDS) + " FROM rows WHERE model=? AND "
            "micro_batch_size=? "
            "AND hbm_bytes=? AND recompute=? ORDER BY arch",
            (model, int(mbs), int(hbm_bytes), int(bool(recompute))),
        )
        data = cur.fetchall()
        out = {"arch": np.array([r[0] for r in data], dtype=np.int64)}
        for j, f in enumerate(ROW_FIELDS, start=1):
            dtype = np.float64 if f in ROW_FLOAT_FIELDS else np.int64
            out[f] = np.array([r[j] for r in data], dtype=dtype)
        return out

    def count(self) -> int:
        """Number of stored rows."""
        return int(self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "format"
