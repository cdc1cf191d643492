"""On-disk result store of a search: resumable, append-only, crash-safe.

Evaluated rows are written to an SQLite database in the output directory as they are
computed, one transaction per batch, so a search killed at any moment (even by SIGKILL)
loses at most the batch in flight and never leaves a partial or duplicated row (the row key
is the primary key). The store remembers the arguments of the search that created it (a
*fingerprint*, written with the first rows); reopening it with different arguments is
refused unless ``force=True``, which discards the old results. A damaged, truncated or
foreign ``results.sqlite`` is reported as such (and replaced with ``force=True``); a
directory, link or read-only file in its place is refused with what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Mapping

import numpy as np

from phaze.errors import ConfigError
from phaze.outdir import OutputDir
from phaze.rows import ROW_DEFAULTS, ROW_FIELDS, ROW_FLOAT_FIELDS

__all__ = ["KEY_FIELDS", "ResultStore"]

#: Key columns of a stored row; the value columns are :data:`phaze.rows.ROW_FIELDS`.
KEY_FIELDS = ("model", "arch", "micro_batch_size", "hbm_bytes", "recompute")


def _column(f: str) -> str:
    default = f" DEFAULT {ROW_DEFAULTS[f]}" if f in ROW_DEFAULTS else ""
    return f"{f} {'REAL' if f in ROW_FLOAT_FIELDS else 'INTEGER'} NOT NULL{default}"


_VALUE_COLUMNS = ", ".join(_column(f) for f in ROW_FIELDS)
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

#: Columns of each table of :data:`_SCHEMA`, to recognise a store of another layout.
_LAYOUT = {
    "meta": ["key", "value"],
    "rows": [*KEY_FIELDS, *ROW_FIELDS],
}
#: The layout of stores written before the columns of :data:`~phaze.rows.ROW_DEFAULTS`
#: existed: opened, they gain those columns with their defaults.
_OLD_LAYOUT = {
    "meta": ["key", "value"],
    "rows": [*KEY_FIELDS, *(f for f in ROW_FIELDS if f not in ROW_DEFAULTS)],
}


class ResultStore:
    """SQLite store of evaluated rows in ``directory/results.sqlite``.

    Opening the store takes the output directory's lock (:class:`~phaze.outdir.OutputDir`)
    unless an already locked ``OutputDir`` is passed. The search's fingerprint is written
    together with its first rows, so a search that fails before computing anything leaves
    no settings behind, and a store without rows accepts any search.

    Parameters
    ----------
    directory : path or OutputDir
        Output directory (created if missing; must be writable).
    fingerprint : mapping
        JSON-serialisable description of the search arguments.
    force : bool
        Discard results of a search with a different fingerprint instead of refusing, and
        replace a damaged or foreign ``results.sqlite``.

    Raises
    ------
    ConfigError
        The directory is unusable or in use; ``results.sqlite`` is a directory, a link,
        read-only, damaged or of another layout (the last two unless ``force``); or it
        holds rows of a different search (unless ``force``).

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
        self,
        directory: str | os.PathLike[str] | OutputDir,
        fingerprint: Mapping,
        force: bool = False,
    ) -> None:
        self._db = None
        if isinstance(directory, OutputDir):
            self._outdir, self._owns_outdir = directory, False
        else:
            self._outdir, self._owns_outdir = OutputDir(directory), True
        self.directory = self._outdir.path
        try:
            self.path = self._outdir.file("results.sqlite")
            self._wanted = json.dumps(dict(fingerprint), sort_keys=True)
            self._fingerprint_stored = False
            self._open(force)
        except BaseException:
            self.close()
            raise

    def _open(self, force: bool) -> None:
        path = self.path
        if path.exists():
            if path.is_dir():
                raise ConfigError(
                    f"{path} is a directory, not a phaze result store; remove it or "
                    f"choose another --out"
                )
            if not path.is_file():
                raise ConfigError(
                    f"{path} is not a regular file; remove it or choose another --out"
                )
            if not os.access(path, os.R_OK | os.W_OK):
                raise ConfigError(
                    f"{path} is read-only; make it writable (chmod u+rw) or choose another --out"
                )
        problem = self._connect()
        if problem is not None:
            self._db.close()
            self._db = None
            if not force:
                raise ConfigError(
                    f"{path} is not a usable phaze result store ({problem}); rerun with "
                    f"--force to replace it, or choose another --out"
                )
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
            problem = self._connect()
            if problem is not None:  # pragma: no cover - a fresh file is always usable
                raise ConfigError(f"{path} cannot be created as a result store: {problem}")
        found = self._db.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        rows = self.count()
        if found is None and rows:
            raise ConfigError(
                f"{path} holds {rows} rows but no search description (not written by "
                f"phaze?); rerun with --force to discard them, or choose another --out"
            )
        if found is not None and found[0] != self._wanted and rows:
            if not force:
                diff = _differences(json.loads(found[0]), json.loads(self._wanted))
                raise ConfigError(
                    f"{path} holds results of a different search "
                    f"(differs in: {diff}); rerun with --force to discard "
                    f"them, or choose another --out"
                )
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM rows")
            self._db.execute("DELETE FROM meta WHERE key='fingerprint'")
            self._db.execute("COMMIT")
        self._fingerprint_stored = found is not None and found[0] == self._wanted

    def _connect(self) -> str | None:
        """Open the database and create the tables; return what is wrong with an
        existing file (damaged, foreign), or None."""
        self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            check = self._db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                return f"damaged: {'; '.join(str(r[0]) for r in check[:3])}"
            tables = {
                name: [c[1] for c in self._db.execute(f"PRAGMA table_info('{name}')")]
                for (name,) in self._db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                ).fetchall()
            }
            if tables == _OLD_LAYOUT:  # rows stored before the defaulted columns
                for f in ROW_FIELDS[len(_OLD_LAYOUT["rows"]) - len(KEY_FIELDS) :]:
                    self._db.execute(f"ALTER TABLE rows ADD COLUMN {_column(f)}")
                tables = {**tables, "rows": _LAYOUT["rows"]}
            if tables and tables != _LAYOUT:
                return f"other layout: tables {sorted(tables)}"
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            return f"damaged: {exc}"
        return None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database and release the directory if this store locked it
        (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._owns_outdir:
            self._outdir.close()

    def add(
        self,
        model: str,
        mbs: int,
        hbm_bytes: int,
        recompute: bool,
        archs,
        values: Mapping[str, object],
    ) -> int:
        """Insert rows for ``archs`` in one transaction; existing keys are kept. A field
        of :data:`~phaze.rows.ROW_DEFAULTS` missing from ``values`` takes its default.

        Returns the number of new rows.
        """
        archs = np.asarray(archs, dtype=np.int64)
        n = len(archs)
        cols = [np.asarray(values[f] if f in values else [ROW_DEFAULTS[f]] * n) for f in ROW_FIELDS]
        key = (model, int(mbs), int(hbm_bytes), int(bool(recompute)))
        kinds = [float if f in ROW_FLOAT_FIELDS else int for f in ROW_FIELDS]
        rows = [
            (key[0], int(a), *key[1:], *(k(c[i]) for k, c in zip(kinds, cols)))
            for i, a in enumerate(archs.tolist())
        ]
        if not rows:
            return 0
        self._db.execute("BEGIN")
        if not self._fingerprint_stored:  # with the first rows, in the same transaction
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (self._wanted,)
            )
        before = self._db.total_changes
        self._db.executemany(f"INSERT OR IGNORE INTO rows VALUES ({_PLACEHOLDERS})", rows)
        added = self._db.total_changes - before
        self._db.execute("COMMIT")
        self._fingerprint_stored = True
        return added

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
