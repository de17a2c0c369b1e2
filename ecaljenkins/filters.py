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
from .names import as_int

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "~", "in")
_FILTER_RE = re.compile(
    r"^\s*(?P<attr>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>==|!=|<=|>=|<|>|~|\bin\b)\s*(?P<value>.*?)\s*$")


#: decimal number text with a fraction or an exponent (no "nan", "inf" or "1_0.5")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?")


def scalar(text: str):
    """Text as the value it spells: bool (``true``/``false``, any case), int, float or text.

    Filter values and run-catalogue cells both go through here, so a filter and the
    cell it is compared with always agree on what is a number.
    """
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    number = as_int(text)
    if number is not None:
        return number
    return float(text) if _FLOAT_RE.fullmatch(text) else text


def _coerce(text: str):
    """A filter value: quoted text as it is (quotes stripped), else :func:`scalar`."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return scalar(text)


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
