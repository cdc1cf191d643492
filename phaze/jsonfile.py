"""Reading the files phaze accepts: JSON (Hugging Face configs, placement instances,
operator latencies, system descriptions) and other text (sweep files, run files), with
every way a file can be wrong reported as a :class:`~phaze.errors.ConfigError` that names
the file.

Examples
--------
>>> import json, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "x.json")
>>> with open(path, "w", encoding="utf-8") as fh:
...     _ = fh.write(json.dumps({"a": 1}))
>>> load_json(path)
{'a': 1}
>>> load_json(os.path.dirname(path))
Traceback (most recent call last):
...
phaze.errors.ConfigError: ... is a directory, not a JSON file
"""

from __future__ import annotations

import json
import os

from phaze.errors import ConfigError

__all__ = ["MAX_JSON_BYTES", "load_json", "read_text"]

#: Largest input file read, JSON or other text (placement instances of thousands of
#: layers are a few MiB; the name dates from when only JSON files were read here).
MAX_JSON_BYTES = 256 * 2**20


def read_text(path: str | os.PathLike[str], what: str = "", kind: str = "text") -> str:
    """The contents of the UTF-8 text file ``path``: a byte-order mark is dropped, and
    ``"\\r\\n"`` and ``"\\r"`` end lines as ``"\\n"`` (as in a file opened in text mode).

    Parameters
    ----------
    path : path
    what : str
        How the file is called in messages (e.g. ``"sweep file"``); default none.
    kind : str
        What the file should be, for the message about a directory (``"JSON"``: "is a
        directory, not a JSON file").

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ConfigError
        The file is a directory, cannot be read, is larger than :data:`MAX_JSON_BYTES`
        or is not UTF-8. The message names the file.
    """
    try:
        name = os.fspath(path)
    except TypeError:
        raise ConfigError(f"{what or 'path'}={path!r} is invalid; allowed: a file path") from None
    label = _label(name, what)
    if os.path.isdir(name):
        raise ConfigError(f"{label} is a directory, not a {kind} file")
    try:
        with open(name, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise  # an OSError, as open() reports it: "[Errno 2] No such file or directory: ..."
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ConfigError(
            f"{label}: cannot be read ({getattr(exc, 'strerror', None) or exc})"
        ) from None
    if len(raw) > MAX_JSON_BYTES:
        raise ConfigError(f"{label} is larger than {MAX_JSON_BYTES} bytes; not a phaze input")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{label} is not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _label(name: str, what: str) -> str:
    return f"{what} {name!r}" if what else repr(name)


def load_json(path: str | os.PathLike[str], what: str = "") -> object:
    """The parsed contents of the UTF-8 JSON file ``path``.

    Parameters
    ----------
    path : path
    what : str
        How the file is called in messages (e.g. ``"--instance"``); default none.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ConfigError
        The file is a directory, cannot be read, is larger than
        :data:`MAX_JSON_BYTES`, is not UTF-8, is not JSON, or nests arrays and objects
        deeper than Python's parser can follow. The message names the file.
    """
    text = read_text(path, what, "JSON")
    label = _label(os.fspath(path), what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label} is not valid JSON ({exc})") from None
    except RecursionError:
        raise ConfigError(
            f"{label} nests arrays/objects too deeply; phaze's formats need at most 4 levels"
        ) from None
