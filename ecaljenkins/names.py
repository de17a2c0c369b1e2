"""Validation and quoting of everything that reaches InfluxQL, YAML or a shell.

Names are checked against one pattern before any request is sent, so that a
hostile campaign, run type or task name is refused at the edge; quoting is still
applied everywhere, so safety does not rest on validation alone.
"""

import re
from urllib.parse import urlsplit

from .errors import ConfigError, InvalidName

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DB_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def describe(value) -> str:
    """``repr(value)``, cut to 40 characters for one-line messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "...'"


def check_name(value, what: str = "name") -> str:
    """Return ``value`` if it is a valid campaign/run type/task name, else raise."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise InvalidName(
            f"invalid {what} {describe(value)}: use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit")
    return value


def check_db(value) -> str:
    """Return ``value`` if it is a valid database name, else raise."""
    if not isinstance(value, str) or not DB_RE.fullmatch(value):
        raise InvalidName(f"invalid database name {describe(value)}: use 1-64 letters, "
                          "digits, '_', '.', '-'")
    return value


def quote_str(value: str) -> str:
    """InfluxQL string literal: ``'value'`` with backslash escapes."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def closest(name: str, known) -> str | None:
    """The name among ``known`` (any iterable of names) most like ``name``, or None if none
    is close: a mistyped campaign, task or key is usually one letter off a real one."""
    from difflib import get_close_matches  # only a failed lookup pays for difflib
    matches = get_close_matches(name, list(known), n=1)
    return matches[0] if matches else None


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` to append to a "not found" message, or "" if nothing is close,
    so that every such message offers the same hint in the same words."""
    hint = closest(name, known)
    return f" (did you mean {hint!r}?)" if hint else ""


def check_url(url: str, what: str, credentials: str) -> str:
    """Return ``url`` if it is ``http(s)://host[:port]/...`` without user or password.

    Server URLs appear in every error message, so they must hold no secret; the
    refusal does not echo the URL. ``credentials`` says where they belong instead.
    """
    try:
        parts = urlsplit(url)
        bad = (parts.scheme not in ("http", "https") or not parts.hostname
               or parts.username is not None or parts.password is not None)
    except ValueError:
        bad = True
    if bad:
        raise ConfigError(f"{what} must be http(s)://host[:port]/ without user or password: "
                          f"give them in {credentials}")
    return url
