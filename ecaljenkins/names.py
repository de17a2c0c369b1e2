"""Validation and quoting of everything that reaches InfluxQL, YAML or a shell.

Names are checked against one pattern before any request is sent, so that a
hostile campaign, run type or task name is refused at the edge; quoting is still
applied everywhere, so safety does not rest on validation alone.
"""

import re
from urllib.parse import urlsplit

from .errors import ConfigError, InputError, InvalidName

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DB_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
#: decimal integer text: ASCII digits only (not "3551²", "1_000" or "3.5e5"), blanks around
INT_RE = re.compile(r"\s*[+-]?[0-9]+\s*")


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


def closest(name: str, known, ignore_case: bool = False) -> str | None:
    """The name among ``known`` (any iterable of names) most like ``name``, or None if none
    is close: a mistyped campaign, task or key is usually one letter off a real one.
    ``ignore_case`` for names users type in any case (eras: ``run2022c``)."""
    from difflib import get_close_matches  # only a failed lookup pays for difflib
    fold = str.lower if ignore_case else str
    pool = {fold(item): item for item in known}
    matches = get_close_matches(fold(name), list(pool), n=1)
    return pool[matches[0]] if matches else None


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` to append to a "not found" message, or "" if nothing is close,
    so that every such message offers the same hint in the same words."""
    hint = closest(name, known)
    return f" (did you mean {hint!r}?)" if hint else ""


def as_int(value) -> int | None:
    """``value`` as an int if it is one (a bool is not) or its decimal text, else None.

    The one reading of an integer, whether a user typed it (a run, a build
    number), a catalogue cell holds it or a filter compares with it, so that
    the same text is a number everywhere or nowhere.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INT_RE.fullmatch(value):
        return int(value)
    return None


def parse_int(value, what: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` (see :func:`as_int`) within ``minimum``..``maximum``, else InputError
    naming ``what`` (``invalid run number 'x': expected a positive integer``)."""
    number = as_int(value)
    if number is None or (minimum is not None and number < minimum) or \
            (maximum is not None and number > maximum):
        expected = ("a positive integer" if minimum == 1 else "an integer" if minimum is None
                    else f"an integer >= {minimum}")
        if maximum is not None:
            expected += f" up to {maximum}"
        raise InputError(f"invalid {what} {describe(value)}: expected {expected}")
    return number


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


def job_name(db: str, campaign: str, task: str) -> str:
    """The Jenkins job of a task of a campaign: ``ecal-<db>-<campaign>-<task>``."""
    name = f"ecal-{check_db(db)}-{check_name(campaign, 'campaign name')}-" \
           f"{check_name(task, 'task name')}"
    if name.endswith("."):
        raise InvalidName(f"invalid task name {task!r}: Jenkins job names cannot end with '.'")
    return name
