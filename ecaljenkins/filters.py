"""Run-type filters: small comparisons over run metadata, parsed without eval.

A run type selects runs with filters such as ``sequence == GLOBAL-RUN``,
``fill >= 8000``, ``era ~ ^Run2022[CD]$`` or ``l1_menu in a,b``; several
filters are AND-ed. Filters are stored as their text, so a campaign's history
shows exactly what the user typed.

The grammar is ``ATTRIBUTE OP VALUE``: the operator is a token (``==``, ``!=``,
``<=``, ``>=``, ``<``, ``>``, ``~``, ``in``), a value is quoted (``'a b'``,
``"x"``) or a bare word holding no operator character (``=<>!~``), so a
doubled or swapped sign (``>==``, ``=<``) is an error instead of part of the
value. :func:`check_against` then holds the attribute to the registry's known
attributes and the value to the attribute's type.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from .errors import InputError
from .names import as_int, did_you_mean

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "~", "in")
#: sign sequences users type for an operator that is not one
_MISTYPED = {"=": "==", "=<": "<=", "=>": ">=", "=!": "!=", "<>": "!=", "=~": "~"}
_ATTR_RE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_SIGNS_RE = re.compile(r"\s*([=<>!~]+|in\b)")
_VALUE_RE = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)"|([^\s'",=<>!~]+))""")
_COMMA_RE = re.compile(r"\s*,")
_MAX_LENGTH = 256

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


def kind_of(value) -> str:
    """``bool``, ``number`` or ``text``: the kinds a filter value and a run attribute have."""
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "text"


class _Scanner:
    """Left-to-right reading of one filter text, each error naming what was expected."""

    def __init__(self, text: str):
        self.text, self.at = text, 0

    def take(self, pattern: re.Pattern):
        match = pattern.match(self.text, self.at)
        if match:
            self.at = match.end()
        return match

    def fail(self, why: str):
        raise InputError(f"invalid filter {self.text!r}: {why}")

    def value(self):
        """One value: (text as typed, value); quoted text stays text."""
        match = self.take(_VALUE_RE)
        if not match:
            rest = self.text[self.at:].strip()
            self.fail(f"a value is expected after the operator, not {rest[:20]!r}" if rest
                      else "a value is expected after the operator")
        if match[3] is not None:
            return match[3], scalar(match[3])
        text = match[1] if match[1] is not None else match[2]
        return match[0].strip(), text


@dataclass(frozen=True)
class Filter:
    """One ``attr OP value`` condition over a run's attributes."""

    text: str
    attr: str
    op: str
    value: object

    @classmethod
    def parse(cls, text: str) -> "Filter":
        if not isinstance(text, str) or "\n" in text or len(text) > _MAX_LENGTH:
            raise InputError(f"invalid filter {text!r}: expected one line of at most "
                             f"{_MAX_LENGTH} characters, 'ATTRIBUTE OP VALUE'")
        scan = _Scanner(text)
        attr = scan.take(_ATTR_RE)
        if not attr:
            scan.fail(f"expected 'ATTRIBUTE OP VALUE' with OP one of {', '.join(OPERATORS)}")
        signs = scan.take(_SIGNS_RE)
        op = signs[1] if signs else None
        if op not in OPERATORS:
            meant = _MISTYPED.get(op) or next((o for o in OPERATORS[:4] if op and
                                               op.startswith(o)), None)
            hint = f" (did you mean '{meant}'?)" if meant else ""
            scan.fail(f"{'no' if op is None else repr(op) + ' is not an'} operator after "
                      f"{attr[1]!r}{hint}; use one of {', '.join(OPERATORS)}")
        typed, value = scan.value()
        raws, values = [typed], [value]
        while op == "in" and scan.take(_COMMA_RE):
            typed, value = scan.value()
            raws.append(typed)
            values.append(value)
        rest = text[scan.at:].strip()
        if rest:
            scan.fail(f"unexpected {rest[:20]!r} after the value (quote a value holding "
                      "spaces or any of = < > ! ~)")
        raw = ",".join(raws)
        if op == "in":
            value = tuple(values)
        elif op == "~":
            try:
                value = re.compile(values[0])
            except re.error as exc:
                scan.fail(f"bad regular expression ({exc})")
        return cls(f"{attr[1]} {op} {raw}", attr[1], op, value)

    def matches(self, run) -> bool:
        """True if ``run`` (anything with ``get(attr)``) satisfies the condition."""
        actual = run.get(self.attr)
        if self.op == "in":
            return any(_compare(actual, v, "==") for v in self.value)
        if self.op == "~":
            return actual is not None and self.value.search(str(actual)) is not None
        return _compare(actual, self.value, self.op)

    def check_against(self, attributes: dict[str, str]) -> None:
        """Refuse an attribute the registry does not know, or a value not of its type.

        ``attributes`` maps each known attribute to ``bool``, ``number`` or ``text``
        (:meth:`ecaljenkins.registry.Registry.attributes`). A regular expression
        (``~``) is matched against the text of any attribute.
        """
        if self.attr not in attributes:
            raise InputError(f"invalid filter {self.text!r}: unknown attribute {self.attr!r}"
                             + did_you_mean(self.attr, attributes)
                             + f"; the run registry knows {', '.join(sorted(attributes))}")
        kind = attributes[self.attr]
        if self.op == "~":
            return
        if kind == "bool" and self.op not in ("==", "!=", "in"):
            raise InputError(f"invalid filter {self.text!r}: {self.attr!r} is true or false, "
                             f"use == or !=")
        for value in self.value if self.op == "in" else (self.value,):
            if kind_of(value) != kind:
                hint = " (quote it to compare text)" if kind == "text" else ""
                raise InputError(f"invalid filter {self.text!r}: {self.attr!r} is {kind}, "
                                 f"not {kind_of(value)} ({value!r}){hint}")


def parse_all(texts) -> list[Filter]:
    return [Filter.parse(t) for t in texts or ()]


def checked(texts, attributes: dict[str, str]) -> list[Filter]:
    """Filters typed by a user: parsed, and held to the registry's ``attributes``."""
    filters = parse_all(texts)
    for item in filters:
        item.check_against(attributes)
    return filters


def matches_all(filters, run) -> bool:
    return all(f.matches(run) for f in filters)
