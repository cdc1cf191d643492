"""The ``phaze`` command line: ``phaze <command> [options]``.

Each command lives in ``phaze/_cli/<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can cause
(:class:`phaze.errors.PhazeError`, ``ValueError``, ``OSError``, and a flag that does not
parse or is outside its range, :mod:`phaze._cli.ranges`) end the program with exit status 2
and a one-line message, never a traceback. A reader that closes the pipe early
(``phaze plan ... | head``) ends it quietly with status 141, as a shell reports SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

__all__ = ["main"]

#: Command names, in the order ``phaze --help`` lists them.
_COMMANDS = ("search", "sweep", "models", "arch", "schedule", "place", "estimate", "plan")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``phaze <command>: error: ...``)
    and exit status 2, like every other error a user can cause."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(text: object) -> str:
    """``text`` on one line (a message may quote a value holding newlines)."""
    return " ".join(str(text).split("\n")).replace("\r", " ")


def _interrupted(exc: BaseException) -> bool:
    """True if ``exc`` was caused by a KeyboardInterrupt: numba re-raises an interrupt
    that arrives while a compiled function calls back into Python as a chain of
    ``SystemError`` whose first cause is the ``KeyboardInterrupt``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _silence_stdout() -> None:
    """Point standard output at the null device, so the interpreter's final flush of what
    is still buffered for a closed pipe does not print a second error."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output)
        pass


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phaze",
        description="Co-design ML training accelerators and their distributed plans.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        module = importlib.import_module(f"phaze._cli.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a flag that does not parse (2, one line)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe fails here, inside the handlers below
        return status
    except KeyboardInterrupt:
        print("phaze: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``phaze plan ... | head``): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    except (ValueError, OSError) as exc:  # PhazeError subclasses ValueError where user-caused
        print(f"phaze {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence for users
        from phaze.errors import PhazeError

        if _interrupted(exc):  # Ctrl-C inside a numba kernel surfaces as a SystemError
            print("phaze: interrupted", file=sys.stderr)
            return 130

        if isinstance(exc, PhazeError):
            print(f"phaze {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
