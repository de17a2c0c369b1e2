"""Validation and quoting of everything that reaches InfluxQL, YAML or a shell.

Names are checked against one pattern before any request is sent, so that a
hostile campaign, run type or task name is refused at the edge; quoting is still
applied everywhere, so safety does not rest on validation alone.
"""

import re

from .errors import InvalidName

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DB_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def check_name(value, what: str = "name") -> str:
    """Return ``value`` if it is a valid campaign/run type/task name, else raise."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidName(
            f"invalid {what} {_describe(value)}: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit")
    return value


def check_db(value) -> str:
    """Return ``value`` if it is a valid database name, else raise."""
    if not isinstance(value, str) or not DB_RE.match(value):
        raise InvalidName(f"invalid database name {_describe(value)}: use 1-64 letters, "
                          "digits, '_', '.', '-'")
    return value


def quote_ident(name: str) -> str:
    """InfluxQL identifier: ``"name"`` with backslash escapes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_str(value: str) -> str:
    """InfluxQL string literal: ``'value'`` with backslash escapes."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
