"""The run registry: which runs exist, with their fill, era and conditions.

Campaigns take their runs from here, and run-type filters are evaluated on the
metadata it returns. Production reads CMS OMS (:class:`OmsRegistry`); tests, the
demo and machines without OMS access read a catalogue file
(:class:`CatalogRegistry`), by default the bundled 2022 catalogue. Both backends
answer the same questions with the same errors, so the rest of the package never
knows which one it talks to.
"""

from __future__ import annotations

import bisect
import csv
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Iterable, Mapping

import requests

from .errors import ConfigError, InputError, NotFound, RegistryError
from .filters import scalar
from .names import as_int, closest, parse_int
from .resources import shipped
from .settings import Settings, current

#: the run catalogue shipped with the package, the registry when none is configured
BUNDLED_CATALOGUE = shipped("data", "runs.csv")
REQUIRED_COLUMNS = ("run_number", "fill_number", "era", "sequence", "start_time", "end_time")
#: columns kept as text even when they look like numbers (an era could be "2022")
_TEXT_COLUMNS = frozenset(("era", "sequence", "start_time", "end_time"))
#: the highest run number a user may type (CMS runs have six digits)
MAX_RUN = 10**9 - 1
#: unknown run numbers named in an error message before "and N more"
_LISTED = 5

DEFAULT_OMS_URL = "https://cmsoms.cern.ch/agg/api/v1"
DEFAULT_TOKEN_URL = "https://auth.cern.ch/auth/realms/cern/protocol/openid-connect/token"
OMS_AUDIENCE = "cmsoms-prod"
#: OMS attribute -> the catalogue's name for it, so a filter works on both backends
OMS_ALIASES = {"stable_beam": "stable_beams", "last_lumisection_number": "lumisections",
               "recorded_lumi": "cms_recorded_lumi"}


# --- runs ----------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One run with every attribute the registry knows about it.

    ``attrs`` holds all the source's columns (the fields above included) so that
    run-type filters can use any of them, and a campaign can store them at
    injection and rebuild the run later with :meth:`from_attrs`.
    """

    number: int
    fill: int
    era: str
    sequence: str
    start_time: str
    end_time: str | None
    attrs: dict = field(hash=False, repr=False)

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> "Run":
        """Build a run from its full attribute mapping.

        This is the one place where the required attributes are checked, for the
        catalogue, OMS and the metadata a campaign stored alike; a bad value
        raises ``ValueError`` naming the attribute, which each caller turns into
        its own error. Runs taken without beam have no fill: their fill is 0.
        """
        attrs = dict(attrs)
        missing = [name for name in REQUIRED_COLUMNS if name not in attrs]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        number = _integer(attrs, "run_number")
        fill = 0 if attrs["fill_number"] is None else _integer(attrs, "fill_number")
        end_time = None if attrs["end_time"] in (None, "") else _timestamp(attrs, "end_time")
        attrs.update(run_number=number, fill_number=fill, end_time=end_time)
        return cls(number, fill, _text(attrs, "era"), _text(attrs, "sequence"),
                   _timestamp(attrs, "start_time"), end_time, attrs)

    def get(self, attr: str):
        """Value of ``attr`` for run-type filters (``run`` and ``fill`` are aliases);
        None when the registry does not know the attribute."""
        if attr == "run":
            return self.number
        if attr == "fill":
            return self.fill
        return self.attrs.get(attr)

    @property
    def closed(self) -> bool:
        """True once the run has ended: only then is its data complete."""
        return self.end_time is not None


def _integer(attrs: dict, name: str) -> int:
    number = as_int(attrs[name])
    if number is None:
        raise ValueError(f"{name} {attrs[name]!r} is not an integer")
    return number


def _text(attrs: dict, name: str) -> str:
    value = attrs[name]
    if value is None or value == "":
        raise ValueError(f"{name} is empty")
    if not isinstance(value, str):
        raise ValueError(f"{name} {value!r} is not text")
    return value


def _timestamp(attrs: dict, name: str) -> str:
    value = _text(attrs, name)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO 8601 time") from None
    return value


def _cell_value(text: str):
    """A catalogue cell as None (empty) or read as a filter value is (bool, int, float,
    text), so that a filter and the cell it is compared with agree on numbers."""
    text = text.strip()
    return scalar(text) if text else None


# --- the interface -----------------------------------------------------------------

class Registry(ABC):
    """Run metadata by run numbers, range, era or "newer than".

    Subclasses supply the raw lookups; the checks of the arguments and the
    error messages are shared here so both backends fail alike.
    """

    def runs(self, numbers: Iterable[int]) -> list[Run]:
        """The runs ``numbers``, sorted; any unknown number raises NotFound."""
        wanted = sorted({parse_int(n, "run number") for n in numbers})
        if not wanted:
            return []
        found = self._lookup(wanted)
        missing = [n for n in wanted if n not in found]
        if missing:
            raise NotFound(_unknown_runs_message(missing, self._closest(missing[0])))
        return [found[n] for n in wanted]

    def run_range(self, first: int, last: int) -> list[Run]:
        """Runs from ``first`` to ``last`` inclusive (possibly none)."""
        first, last = (parse_int(n, "run number") for n in (first, last))
        if first > last:
            raise InputError(f"invalid run range {first}-{last}: the first run is after the last")
        return self._range(first, last)

    def era(self, name: str) -> list[Run]:
        """Runs of era ``name``; an era the registry does not know raises NotFound."""
        if not isinstance(name, str) or not name:
            raise InputError(f"invalid era {name!r}")
        runs = self._era_runs(name)
        if not runs:
            known = self.eras()
            if name not in known:
                raise NotFound(_unknown_era_message(name, known))
        return runs

    def after(self, run: int, closed_only: bool = True) -> list[Run]:
        """Runs numbered above ``run`` (a prompt campaign's new runs); by default
        only closed ones, whose data is complete."""
        runs = self._after(parse_int(run, "run number"))
        return [r for r in runs if r.closed] if closed_only else runs

    @abstractmethod
    def eras(self) -> list[str]:
        """Known eras, oldest first."""

    @abstractmethod
    def _lookup(self, numbers: list[int]) -> dict[int, Run]:
        """The known runs among ``numbers`` (sorted, unique), by number."""

    @abstractmethod
    def _closest(self, number: int) -> int | None:
        """The known run nearest to ``number`` (None if there is no run at all)."""

    @abstractmethod
    def _range(self, first: int, last: int) -> list[Run]:
        """Runs ``first``..``last`` inclusive, sorted."""

    @abstractmethod
    def _era_runs(self, name: str) -> list[Run]:
        """Runs of era ``name``, sorted; empty for an unknown era."""

    @abstractmethod
    def _after(self, run: int) -> list[Run]:
        """All runs numbered above ``run``, sorted."""


def _unknown_runs_message(missing: list[int], nearest: int | None) -> str:
    listed = ", ".join(str(n) for n in missing[:_LISTED])
    if len(missing) > _LISTED:
        listed += f" and {len(missing) - _LISTED} more"
    hint = f"closest known run: {nearest}" if nearest is not None else "the registry has no runs"
    return f"unknown run{'s' if len(missing) > 1 else ''} {listed} ({hint})"


def _unknown_era_message(name: str, known: list[str]) -> str:
    if not known:
        return f"unknown era {name!r}: the registry has no eras"
    hint = closest(name, known, ignore_case=True)
    ordered = [era for era in known if era == hint] + [era for era in known if era != hint]
    return f"unknown era {name!r}; known eras: {', '.join(ordered)}"


# --- catalogue files -------------------------------------------------------------

@dataclass
class _Catalogue:
    """A loaded catalogue, indexed so every lookup costs O(result)."""

    runs: list[Run]              # sorted by number
    numbers: list[int]           # the same order, for bisect
    by_number: dict[int, Run]
    by_era: dict[str, list[Run]]  # eras in order of their first run


class CatalogRegistry(Registry):
    """Runs listed in a CSV file (header row) or a JSON file (a list of objects, or
    ``{"runs": [...]}``), read once on first use."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def eras(self) -> list[str]:
        return list(self._catalogue.by_era)

    def _lookup(self, numbers):
        by_number = self._catalogue.by_number
        return {n: by_number[n] for n in numbers if n in by_number}

    def _closest(self, number):
        numbers = self._catalogue.numbers
        if not numbers:
            return None
        at = bisect.bisect_left(numbers, number)
        neighbours = numbers[max(at - 1, 0):at + 1]
        return min(neighbours, key=lambda n: (abs(n - number), n))

    def _range(self, first, last):
        cat = self._catalogue
        return cat.runs[bisect.bisect_left(cat.numbers, first):
                        bisect.bisect_right(cat.numbers, last)]

    def _era_runs(self, name):
        return list(self._catalogue.by_era.get(name, ()))

    def _after(self, run):
        cat = self._catalogue
        return cat.runs[bisect.bisect_right(cat.numbers, run):]

    @cached_property
    def _catalogue(self) -> _Catalogue:
        where_of: dict[int, str] = {}
        by_number: dict[int, Run] = {}
        for where, attrs in self._entries():
            try:
                run = Run.from_attrs(attrs)
            except ValueError as exc:
                raise self._error(f"{where}: {exc}") from None
            if run.number in by_number:
                raise self._error(f"{where}: duplicate run number {run.number} "
                                  f"(already on {where_of[run.number]})")
            where_of[run.number] = where
            by_number[run.number] = run
        runs = sorted(by_number.values(), key=lambda r: r.number)
        by_era: dict[str, list[Run]] = {}
        for run in runs:
            by_era.setdefault(run.era, []).append(run)
        return _Catalogue(runs, [r.number for r in runs], by_number, by_era)

    def _entries(self) -> list[tuple[str, dict]]:
        """(position in the file, attributes) of every run, read in one go."""
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                if self.path.suffix.lower() == ".json":
                    return self._json_entries(json.load(handle))
                return self._csv_entries(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read run catalogue {self.path}: "
                              f"{exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise self._error("not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise self._error(f"invalid JSON ({exc})") from None
        except csv.Error as exc:
            raise self._error(f"malformed CSV ({exc})") from None

    def _csv_entries(self, handle) -> list[tuple[str, dict]]:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise self._error(f"missing required column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)}")
        entries = []
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row or None in row.values():
                raise self._error(f"{where}: {len(reader.fieldnames)} fields expected "
                                  "as in the header")
            entries.append((where, {key: (value.strip() or None) if key in _TEXT_COLUMNS
                                    else _cell_value(value) for key, value in row.items()}))
        return entries

    def _json_entries(self, data) -> list[tuple[str, dict]]:
        if isinstance(data, dict) and "runs" in data:
            data = data["runs"]
        if not isinstance(data, list):
            raise self._error('expected a list of runs or {"runs": [...]}')
        entries = []
        for index, item in enumerate(data, 1):
            if not isinstance(item, dict):
                raise self._error(f"run {index}: expected an object, got {type(item).__name__}")
            entries.append((f"run {index}", {k: None if v == "" else v for k, v in item.items()}))
        return entries

    def _error(self, problem: str) -> ConfigError:
        return ConfigError(f"run catalogue {self.path}: {problem}")


# --- CMS OMS ------------------------------------------------------------------------

def _reason(response: requests.Response) -> str:
    """The server's own short explanation of a failure (JSON:API ``errors`` or an
    OpenID ``error_description``), if it gave one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        text = errors[0].get("detail") or errors[0].get("title")
    else:
        text = body.get("error_description") or body.get("error")
    return f": {' '.join(str(text).split())[:200]}" if text else ""


class OmsRegistry(Registry):
    """CMS OMS API v1 (JSON:API), authenticated with CERN SSO client credentials.

    Every question is one filtered ``runs`` query (paged), never one query per
    run; only a failed lookup asks more, to name the closest run or the known eras.
    The access token is fetched once, on the first query. Neither the client
    secret nor the token ever appears in an error message.
    """

    def __init__(self, base_url: str | None = None, session: requests.Session | None = None,
                 page_limit: int = 1000, timeout: float = 60.0, settings: Settings | None = None):
        settings = current(settings)
        self.base_url = (base_url or settings.oms_url or DEFAULT_OMS_URL).rstrip("/")
        self.token_url = settings.oms_token_url or DEFAULT_TOKEN_URL
        self.client_id, self._client_secret = settings.oms_credentials()
        self.session = session or requests.Session()
        self.page_limit = page_limit
        self.timeout = timeout
        self._token: str | None = None

    # Registry primitives: one query each
    def eras(self) -> list[str]:
        records = [r.get("attributes") or {} for r in self._records("eras", [])]
        records.sort(key=lambda a: a["start_run"] if isinstance(a.get("start_run"), int) else 0)
        return [str(a["name"]) for a in records if a.get("name")]

    def _lookup(self, numbers):
        wanted = set(numbers)
        return {run.number: run for run in self._range(numbers[0], numbers[-1])
                if run.number in wanted}

    def _closest(self, number):
        candidates = [run.number for op, sort in (("GE", "run_number"), ("LE", "-run_number"))
                      for run in self._runs([(f"filter[run_number][{op}]", number)],
                                            sort=sort, limit=1)]
        return min(candidates, key=lambda n: (abs(n - number), n)) if candidates else None

    def _range(self, first, last):
        return self._runs([("filter[run_number][GE]", first), ("filter[run_number][LE]", last)])

    def _era_runs(self, name):
        return self._runs([("filter[era][EQ]", name)])

    def _after(self, run):
        return self._runs([("filter[run_number][GT]", run)])

    # HTTP
    def _runs(self, filters: list, sort: str = "run_number", limit: int | None = None
              ) -> list[Run]:
        """Runs matching ``filters``: all pages, or only the first ``limit`` runs."""
        runs = [self._run(record) for record in self._records("runs", filters, sort, limit)]
        return sorted(runs, key=lambda r: r.number)

    def _records(self, resource: str, filters: list, sort: str | None = None,
                 limit: int | None = None) -> list[dict]:
        """All records of ``resource`` matching ``filters``, following the pages until
        one is short or has no next link (or the first page only, when ``limit`` is
        given)."""
        page = limit or self.page_limit
        records: list[dict] = []
        while True:
            params = [*filters, ("page[offset]", len(records)), ("page[limit]", page)]
            if sort:
                params.append(("sort", sort))
            body = self._get(resource, params)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise RegistryError(f"OMS answered {resource} without a list of data")
            records += data
            total = (body.get("meta") or {}).get("totalResourceCount")
            if (limit or len(data) < page or not (body.get("links") or {}).get("next")
                    or (isinstance(total, int) and len(records) >= total)):
                return records

    def _get(self, resource: str, params: list):
        url = f"{self.base_url}/{resource}"
        headers = {"Authorization": f"Bearer {self._bearer()}", "Accept": "application/json"}
        try:
            response = self.session.get(url, params=params, headers=headers,
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach OMS at {url}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise RegistryError(f"OMS refused {resource} (HTTP {response.status_code}"
                                f"{_reason(response)}): check that client {self.client_id} "
                                f"may read {OMS_AUDIENCE}")
        if response.status_code != 200:
            raise RegistryError(f"OMS failed on {resource} (HTTP {response.status_code}"
                                f"{_reason(response)})")
        try:
            return response.json()
        except ValueError:
            raise RegistryError(f"OMS answered {resource} with invalid JSON") from None

    def _bearer(self) -> str:
        """The CERN SSO access token of the client credentials (fetched once)."""
        if self._token is None:
            form = {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self._client_secret, "audience": OMS_AUDIENCE}
            try:
                response = self.session.post(self.token_url, data=form, timeout=self.timeout)
            except requests.RequestException as exc:
                raise RegistryError(f"cannot reach CERN SSO at {self.token_url}: "
                                    f"{type(exc).__name__}") from None
            if response.status_code != 200:
                raise RegistryError(f"CERN SSO refused the OMS client {self.client_id} "
                                    f"(HTTP {response.status_code}{_reason(response)})")
            try:
                token = response.json().get("access_token")
            except (ValueError, AttributeError):
                token = None
            if not isinstance(token, str) or not token:
                raise RegistryError(f"CERN SSO answered {self.token_url} without an access token")
            self._token = token
        return self._token

    @staticmethod
    def _run(record) -> Run:
        """A Run from an OMS record, with the catalogue's names for OMS attributes."""
        attributes = record.get("attributes") if isinstance(record, dict) else None
        if not isinstance(attributes, dict):
            raise RegistryError("OMS returned a run without attributes")
        attrs = dict(attributes)
        attrs.setdefault("run_number", record.get("id"))
        for oms_name, name in OMS_ALIASES.items():
            if oms_name in attrs:
                attrs.setdefault(name, attrs[oms_name])
        try:
            return Run.from_attrs(attrs)
        except ValueError as exc:
            raise RegistryError(f"OMS returned a malformed run {record.get('id')!r}: {exc}") \
                from None


# --- choosing a backend ---------------------------------------------------------------

def open_registry(spec: str | None = None, settings: Settings | None = None) -> Registry:
    """The registry named by ``spec``, else by ``$ECAL_RUN_REGISTRY``, else the bundled
    catalogue: ``oms`` for CMS OMS, or a path ending in ``.csv``/``.json``."""
    origin = ""
    if not spec:
        settings = current(settings)
        spec = settings.run_registry
        origin = " (from ECAL_RUN_REGISTRY)"
    if not spec:
        return CatalogRegistry(BUNDLED_CATALOGUE)
    if spec == "oms":
        return OmsRegistry(settings=settings)
    if spec.lower().endswith((".csv", ".json")):
        return CatalogRegistry(Path(spec).expanduser())
    raise ConfigError(f"unknown run registry {spec!r}{origin}: use 'oms' or the path of a "
                      ".csv or .json run catalogue")


# --- run numbers typed by users ------------------------------------------------

def parse_run(text: str) -> int:
    """A run number typed by a user: decimal digits, 1 to :data:`MAX_RUN`."""
    return parse_int(text, "run number", 1, MAX_RUN)


def parse_runs(text: str) -> list[int]:
    """``355100,355101`` -> [355100, 355101]; empty items are an error, not skipped."""
    return [parse_run(item) for item in text.split(",")]


def parse_range(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2:
        raise InputError(f"invalid run range {text!r}: expected MIN,MAX")
    first, last = (parse_run(p) for p in parts)
    if first > last:
        raise InputError(f"invalid run range {text!r}: {first} is greater than {last}")
    return first, last
