"""Run-type filters: small comparisons over run metadata, parsed without eval.

A run type selects runs with filters such as ``sequence == GLOBAL-RUN``,
``fill >= 8000``, ``era ~ ^Run2022[CD]$`` or ``l1_menu in a,b``; several
filters are AND-ed. Filters are stored as their text, so a campaign's history
shows exactly what the user typed.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from .errors import InputError

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "~", "in")
_FILTER_RE = re.compile(
    r"^\s*(?P<attr>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|<=|>=|<|>|~|\bin\b)\s*(?P<value>.*?)\s*$")


def _coerce(text: str):
    """Interpret a filter value: bool, int, float or plain string (quotes stripped)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
        ">": operator.gt, ">=": operator.ge}


def _compare(actual, wanted, op: str) -> bool:
    """Compare a run attribute with a filter value, in the value's type."""
    if actual is None:
        return op == "!="
    if isinstance(wanted, bool):
        actual = actual if isinstance(actual, bool) else str(actual).lower() == "true"
    elif isinstance(wanted, (int, float)):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return op == "!="
    else:
        actual = str(actual)
    return _OPS[op](actual, wanted)


@dataclass(frozen=True)
class Filter:
    """One ``attr OP value`` condition over a run's attributes."""

    text: str
    attr: str
    op: str
    value: object

    @classmethod
    def parse(cls, text: str) -> "Filter":
        match = _FILTER_RE.match(text or "")
        if not match or not match["value"] or "\n" in text or len(text) > 256:
            raise InputError(f"invalid filter {text!r}: expected 'ATTRIBUTE OP VALUE' with OP "
                             f"one of {', '.join(OPERATORS)}")
        attr, op, raw = match["attr"], match["op"], match["value"]
        if op == "in":
            items = [_coerce(v.strip()) for v in raw.split(",")]
            if any(v == "" for v in items):
                raise InputError(f"invalid filter {text!r}: empty value in list")
            value = tuple(items)
        elif op == "~":
            try:
                value = re.compile(raw)
            except re.error as exc:
                raise InputError(f"invalid filter {text!r}: bad regular expression ({exc})")
        else:
            value = _coerce(raw)
        return cls(f"{attr} {op} {raw}", attr, op, value)

    def matches(self, run) -> bool:
        """True if ``run`` (anything with ``get(attr)``) satisfies the condition."""
        actual = run.get(self.attr)
        if self.op == "in":
            return any(_compare(actual, v, "==") for v in self.value)
        if self.op == "~":
            return actual is not None and self.value.search(str(actual)) is not None
        return _compare(actual, self.value, self.op)


def parse_all(texts) -> list[Filter]:
    return [Filter.parse(t) for t in texts or ()]


def matches_all(filters, run) -> bool:
    return all(f.matches(run) for f in filters)
