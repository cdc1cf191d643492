"""The ``phaze`` command line: ``phaze <command> [options]``.

Each command lives in ``phaze/_cli/<name>.py`` and defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can cause
(:class:`phaze.errors.PhazeError`, ``ValueError``, ``OSError``) end the program with exit
status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main"]

#: Command names, in the order ``phaze --help`` lists them.
_COMMANDS = ("search", "sweep", "models", "arch", "schedule", "place", "estimate", "plan")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("phaze: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # PhazeError subclasses ValueError where user-caused
        print(f"phaze {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence for users
        from phaze.errors import PhazeError

        if isinstance(exc, PhazeError):
            print(f"phaze {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
