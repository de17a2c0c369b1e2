"""What every command shares: global options, output helpers, the error edge.

``--db`` and ``-c/--campaign`` are accepted before or after the sub-command
(the documented command lines use both forms). The environment is read here,
once per command, into ``args.settings`` (:class:`~ecaljenkins.settings.Settings`),
which the verbs pass down. Library exceptions become one line on stderr and an
exit status here, and nowhere else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import __version__
from ..errors import EcalError
from ..settings import Settings


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2) instead of a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_target_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """--db and -c/--campaign, accepted on the main parser and on every sub-command."""
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--db", default=default,
                        help="InfluxDB database (default: $ECAL_INFLUXDB_DB)")
    parser.add_argument("-c", "--campaign", default=default, help="campaign name")
    if top:
        parser.add_argument("--debug", action="store_true",
                            help="show a traceback on unexpected errors")


def make_parser(prog: str, description: str, groups) -> Parser:
    """Main parser with one sub-command per verb; ``groups`` register their verbs."""
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_target_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in groups:
        group.register(sub)
    return parser


def subcommand(sub, name: str, func, help: str, **kwargs) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, **kwargs)
    add_target_options(parser)
    parser.set_defaults(func=func)
    return parser


def require_campaign(args) -> str:
    if not args.campaign:
        raise_usage("the campaign is required: give -c/--campaign NAME")
    return args.campaign


def raise_usage(message: str):
    from ..errors import InputError
    raise InputError(message)


def split_list(values) -> list[str]:
    """Accept space- and comma-separated lists alike: ``a b,c`` -> [a, b, c]."""
    items = []
    for value in values or ():
        items += [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        raise_usage(f"empty name in list {','.join(values)!r}")
    return items


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def print_table(headers: list[str], rows: list[list]) -> None:
    """A plain aligned text table (what ``influx`` and ``jenkins-jobs`` print)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run_main(parser: Parser, argv=None) -> int:
    """Parse, dispatch, and translate errors into one line and an exit status."""
    args = parser.parse_args(argv)
    try:
        args.settings = Settings.from_env()
        return args.func(args) or 0
    except EcalError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug: one line, unless the user asks for the traceback
        if args.debug:
            raise
        print(f"{parser.prog}: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for details)", file=sys.stderr)
        return 1


def influx(args):
    """The InfluxDB client for ``--db`` (credentials from the settings)."""
    from ..influx import Influx
    return Influx.from_settings(args.settings, args.db)


def runctrl(args):
    """The :class:`RunCtrl` of ``--db`` and ``--campaign``."""
    from ..campaign import RunCtrl
    return RunCtrl(influx(args), require_campaign(args))
