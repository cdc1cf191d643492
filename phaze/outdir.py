"""The output directory of a search: one owner at a time, no symlinks, atomic files.

A search writes into one directory (``--out``): the result store ``results.sqlite`` and,
at the end, ``results.csv``, ``best.json`` and the plots. :class:`OutputDir` guards it:

* **One search at a time.** Opening takes an exclusive OS lock (``fcntl.flock``) on
  ``DIR/.phaze.lock`` and keeps it until :meth:`OutputDir.close`. The operating system
  releases the lock when the process ends in any way, ``kill -9`` included, so a crashed
  search never leaves the directory locked. A second search on the same directory gets a
  :class:`~phaze.errors.ConfigError` naming it.
* **No symbolic links.** A file phaze writes (see :data:`OUTPUT_NAMES`) that is a symbolic
  link is refused, so a planted link cannot make phaze overwrite or create a file outside
  the directory. The directory itself may be a link.
* **Atomic files.** :func:`atomic_path` (and :func:`atomic_write_text`,
  :func:`atomic_write_bytes`) write to a temporary file in the same directory and
  ``os.replace`` it over the target, so a reader (or a search killed mid-write) sees either
  the old file or the complete new one, never a truncated one. Temporary files left by a
  killed search are removed the next time the directory is opened.

Examples
--------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     with OutputDir(d) as out:
...         target = atomic_write_text(out.path / "best.json", "{}")
...         target.read_text()
'{}'
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from phaze.errors import ConfigError

__all__ = [
    "LOCK_NAME",
    "OUTPUT_NAMES",
    "OutputDir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
]

#: Lock file held by the search that owns the directory.
LOCK_NAME = ".phaze.lock"

#: Every file a search writes into its output directory (SQLite's side files included).
OUTPUT_NAMES = (
    "results.sqlite",
    "results.sqlite-wal",
    "results.sqlite-shm",
    "results.sqlite-journal",
    "results.csv",
    "best.json",
    "frontier.png",
    "stages.png",
)

#: Temporary files of :func:`atomic_path`: ``.<name>.<random>.tmp<suffix>``.
_TEMP = re.compile(r"^\.(?P<name>[^/]+)\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")


def _check_not_link(path: Path) -> None:
    if path.is_symlink():
        raise ConfigError(
            f"refusing to use {str(path)!r}: it is a symbolic link (to "
            f"{os.readlink(path)!r}); phaze writes only regular files in its output "
            f"directory: remove the link or choose another --out"
        )


class OutputDir:
    """Exclusive, checked ownership of a search's output directory.

    Parameters
    ----------
    directory : path
        Created if missing (with its parents). Must not be the empty string.

    Raises
    ------
    ConfigError
        The path is empty, cannot be created or written, is held by another search, or one
        of :data:`OUTPUT_NAMES` in it is a symbolic link.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     first = OutputDir(d)
    ...     try:
    ...         OutputDir(d)
    ...     except ConfigError as exc:
    ...         print("in use" in str(exc))
    ...     first.close()
    True
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise ConfigError(f"output directory {directory!r} must be a path")
        if str(directory) == "" or os.fspath(directory) == "":
            raise ConfigError("output directory '' is empty: name a directory (--out DIR)")
        self.path = Path(directory)
        self._fd: int | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"output directory {str(directory)!r} cannot be created: {exc.strerror or exc}"
            ) from None
        if not self.path.is_dir():
            raise ConfigError(f"output directory {str(directory)!r} is not a directory")
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise ConfigError(f"output directory {str(directory)!r} is not writable")
        self._lock()
        try:
            for name in OUTPUT_NAMES:
                _check_not_link(self.path / name)
            self._remove_temporaries()
        except BaseException:
            self.close()
            raise

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        _check_not_link(lock)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(lock, flags, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"output directory {str(self.path)!r}: cannot open its lock file "
                f"{LOCK_NAME}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (process {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise ConfigError(
                    f"output directory {str(self.path)!r} is in use by another phaze "
                    f"search{holder}; wait for it to finish or choose another --out"
                ) from None
            raise ConfigError(
                f"output directory {str(self.path)!r} cannot be locked: {exc.strerror or exc}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _remove_temporaries(self) -> None:
        """Delete temporary files a killed search left behind (we hold the lock)."""
        for entry in os.scandir(self.path):
            m = _TEMP.match(entry.name)
            if m and m["name"] in OUTPUT_NAMES and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    @property
    def locked(self) -> bool:
        """Whether this object still holds the directory's lock."""
        return self._fd is not None

    def file(self, name: str) -> Path:
        """Path of output ``name`` (one of :data:`OUTPUT_NAMES`), refused if it is a link."""
        if name not in OUTPUT_NAMES:
            raise ValueError(f"{name!r} is not a phaze output; known: {OUTPUT_NAMES}")
        path = self.path / name
        _check_not_link(path)
        return path

    def remove(self, name: str) -> bool:
        """Delete output ``name`` if present (a stale file this run does not produce);
        returns whether a file was removed."""
        try:
            os.unlink(self.file(name))
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        """Release the lock (idempotent). The lock file itself stays."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> OutputDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OutputDir({str(self.path)!r}, locked={self.locked})"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``.

    The temporary file has ``target``'s suffix (so writers that infer a format from it,
    such as matplotlib, work). If the block raises, the temporary file is deleted and
    ``target`` is untouched. A symbolic link at ``target`` is refused (``os.replace``
    would replace the link, but a link there means someone planted it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     target = pathlib.Path(d) / "results.csv"
    ...     with atomic_path(target) as tmp:
    ...         _ = tmp.write_text("a,b\\n")
    ...         target.exists()
    ...     target.read_text()
    False
    'a,b\\n'
    """
    target = Path(target)
    _check_not_link(target)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the bytes reach the disk before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: the classic read-and-restore
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`); returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write_bytes(pathlib.Path(d) / "x.bin", b"12").read_bytes()
    b'12'
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``target`` atomically (see :func:`atomic_path`); returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     atomic_write_text(pathlib.Path(d) / "x.txt", "hi").read_text()
    'hi'
    """
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(target)
