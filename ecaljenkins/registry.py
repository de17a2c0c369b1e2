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
from urllib.parse import quote, urlsplit

import requests

from .errors import ConfigError, InputError, NotFound, RegistryError
from .filters import kind_of, scalar
from .names import as_int, closest, parse_int
from .resources import shipped
from .settings import Settings, current

#: the run catalogue shipped with the package, the registry when none is configured
BUNDLED_CATALOGUE = shipped("data", "runs.csv")
#: ``ECAL_RUN_REGISTRY`` naming the bundled catalogue on purpose
BUNDLED = "bundled"
REQUIRED_COLUMNS = ("run_number", "fill_number", "era", "sequence", "start_time", "end_time")
#: columns kept as text even when they look like numbers (an era could be "2022")
_TEXT_COLUMNS = frozenset(("era", "sequence", "start_time", "end_time"))
#: the highest run number a user may type (CMS runs have six digits)
MAX_RUN = 10**9 - 1
#: unknown run numbers named in an error message before "and N more"
_LISTED = 5

DEFAULT_OMS_URL = "https://cmsoms.cern.ch/agg/api/v1"
#: CERN SSO's API-access endpoint: a client-credentials token for another
#: application (the ``audience``), as ``omsapi`` asks it
DEFAULT_TOKEN_URL = "https://auth.cern.ch/auth/realms/cern/api-access/token"
#: the audience of the production OMS (``ECAL_OMS_AUDIENCE`` for another instance)
OMS_AUDIENCE = "cmsoms-prod"
#: the attributes of each OMS resource this client relies on (checked against its meta)
OMS_REQUIRED = {"runs": ("run_number", "fill_number", "sequence", "start_time", "end_time"),
                "eras": ("name", "start_run", "end_run"),
                "fills": ("fill_number", "end_time")}
#: OMS attribute -> the catalogue's name for it, so a filter works on both backends
OMS_ALIASES = {"stable_beam": "stable_beams", "last_lumisection_number": "lumisections",
               "recorded_lumi": "cms_recorded_lumi"}
#: the attributes of an OMS run (API v1 ``runs``) a filter may name, with their kinds
OMS_ATTRIBUTES = {
    "run": "number", "fill": "number", "run_number": "number", "fill_number": "number",
    "era": "text", "sequence": "text", "start_time": "text", "end_time": "text",
    "stable_beam": "bool", "stable_beams": "bool", "last_lumisection_number": "number",
    "lumisections": "number", "recorded_lumi": "number", "cms_recorded_lumi": "number",
    "delivered_lumi": "number", "init_lumi": "number", "end_lumi": "number",
    "b_field": "number", "energy": "number", "duration": "number",
    "l1_menu": "text", "l1_key": "text", "hlt_key": "text", "hlt_physics_rate": "number",
    "l1_rate": "number", "fill_type_runtime": "text", "fill_type_party1": "text",
    "clock_type": "text", "cmssw_version": "text", "components": "text",
    "tier0_transfer": "bool", "trigger_mode": "text", "initial_prescale_index": "number",
}


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
    def fill_end(self, fill: int) -> str | None:
        """When fill ``fill`` ended (ISO 8601), None while it goes on; NotFound for a
        fill the registry does not know. A prompt fill group is complete once its
        fill has ended."""

    @abstractmethod
    def attributes(self) -> dict[str, str]:
        """{attribute: ``bool``, ``number`` or ``text``} of every attribute a run-type
        filter may name (``run`` and ``fill`` included)."""

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
    attributes: dict[str, str]   # the filterable attributes and their kinds


class CatalogRegistry(Registry):
    """Runs listed in a CSV file (header row) or a JSON file (a list of objects, or
    ``{"runs": [...]}``), read once on first use."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def eras(self) -> list[str]:
        return list(self._catalogue.by_era)

    def fill_end(self, fill: int) -> str | None:
        """A catalogue has no fills: a fill is over once a run of a later fill
        exists, at the end of its last run."""
        fill = parse_int(fill, "fill number")
        cat = self._catalogue
        runs = [run for run in cat.runs if run.fill == fill]
        if not runs or fill == 0:
            raise NotFound(f"unknown fill {fill}")
        later = any(run.fill > fill for run in cat.runs[cat.runs.index(runs[-1]) + 1:])
        return runs[-1].end_time if later and runs[-1].closed else None

    def attributes(self) -> dict[str, str]:
        return self._catalogue.attributes

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
        return _Catalogue(runs, [r.number for r in runs], by_number, by_era,
                          _attribute_kinds(runs))

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


def _attribute_kinds(runs: list[Run]) -> dict[str, str]:
    """The kind of each attribute the runs carry: ``bool`` or ``number`` when every
    value of it is one, else ``text``."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for name, value in run.attrs.items():
            kinds = seen.setdefault(name, set())
            if value is not None:
                kinds.add(kind_of(value))
    kinds = {name: found.pop() if len(found) == 1 else "text" for name, found in seen.items()}
    kinds.update(run="number", fill="number")
    return kinds


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


@dataclass(frozen=True)
class Era:
    """An era of the ``eras`` resource: the runs ``start_run``..``end_run`` (None while
    the era goes on)."""

    name: str
    start_run: int
    end_run: int | None


class OmsRegistry(Registry):
    """CMS OMS API v1 (JSON:API), authenticated with CERN SSO client credentials.

    Requests are shaped as CMS' own client ``omsapi`` shapes them: the token from
    CERN's API-access endpoint (client credentials and the ``audience`` of the OMS
    instance, ``ECAL_OMS_AUDIENCE``), then ``GET <resource>?filter[a][OP]=v&...
    &sort=a&page[offset]=N&page[limit]=M`` with the bearer token, redirects not
    followed; on a 401 a new token is fetched once and the request sent again.
    Unlike ``omsapi``, every page is read (``links.next``), so a server capping
    ``page[limit]`` never truncates an answer.

    Runs carry no era in OMS: an era is resolved through the ``eras`` resource
    (read once) and its runs queried by range; each run's era is filled from
    those eras. The attributes relied on are checked once against the
    resource's ``meta`` (:data:`OMS_REQUIRED`). Every question is one query
    (paged), never one per run. Neither the client secret nor the token ever
    appears in an error message.
    """

    def __init__(self, base_url: str | None = None, session: requests.Session | None = None,
                 page_limit: int = 1000, timeout: float = 60.0, settings: Settings | None = None):
        settings = current(settings)
        self.base_url = (base_url or settings.oms_url or DEFAULT_OMS_URL).rstrip("/")
        self.token_url = settings.oms_token_url or DEFAULT_TOKEN_URL
        self.audience = settings.oms_audience or OMS_AUDIENCE
        self.client_id, self._client_secret = settings.oms_credentials()
        self.session = session or requests.Session()
        self.page_limit = page_limit
        self.timeout = timeout
        self._token: str | None = None
        self._checked: set[str] = set()
        self._eras: list[Era] | None = None

    def attributes(self) -> dict[str, str]:
        return dict(OMS_ATTRIBUTES)

    # Registry primitives: one query each
    def eras(self) -> list[str]:
        return [era.name for era in self._era_table()]

    def fill_end(self, fill: int) -> str | None:
        """The fill's ``end_time``: when the LHC ended the fill, null while it goes on.
        Not ``end_stable_beam``: runs of a fill go on after its stable beams end, only
        the fill's end says no run of it will start. Its last run may still be open
        then (a run stops after the dump): the scheduler checks that from the runs it
        fetched. A record of another fill (a filter OMS ignored) or an end that is no
        time raises RegistryError rather than being taken for an answer."""
        fill = parse_int(fill, "fill number")
        records = self._records("fills", [("filter[fill_number][EQ]", fill)], limit=1)
        if not records:
            raise NotFound(f"unknown fill {fill}")
        attrs = records[0].get("attributes") if isinstance(records[0], dict) else None
        if not isinstance(attrs, dict) or as_int(attrs.get("fill_number")) != fill \
                or "end_time" not in attrs:
            raise RegistryError(f"OMS answered fill {fill} with another record: fill_number "
                                f"{fill} and end_time expected")
        if attrs["end_time"] is None:
            return None
        try:
            return _timestamp(attrs, "end_time")
        except ValueError as exc:
            raise RegistryError(f"OMS returned a malformed fill {fill}: {exc}") from None

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
        era = next((era for era in self._era_table() if era.name == name), None)
        if era is None:
            return []
        if era.end_run is None:
            return self._after(era.start_run - 1)
        return self._range(era.start_run, era.end_run)

    def _after(self, run):
        return self._runs([("filter[run_number][GT]", run)])

    # eras
    def _era_table(self) -> list[Era]:
        """Every era, oldest first (read once)."""
        if self._eras is None:
            eras = []
            for record in self._records("eras", [], sort="start_run"):
                attrs = record.get("attributes") if isinstance(record, dict) else None
                start, end = ((attrs or {}).get(key) for key in ("start_run", "end_run"))
                name = (attrs or {}).get("name") or record.get("id")
                if not isinstance(name, str) or not isinstance(start, int) or \
                        not (end is None or isinstance(end, int)):
                    raise RegistryError(f"OMS returned a malformed era {record.get('id')!r}: "
                                        "name, start_run and end_run expected")
                eras.append(Era(name, start, end))
            self._eras = sorted(eras, key=lambda era: era.start_run)
        return self._eras

    def _era_of(self, number: int) -> str | None:
        """The era of run ``number``: the last era started at or before it (OMS
        closes an era's ``end_run`` when the next one starts, so a run past the
        last ``end_run`` is taken to belong to that era still); None before the
        first era."""
        eras = self._era_table()
        at = bisect.bisect_right([era.start_run for era in eras], number) - 1
        return eras[at].name if at >= 0 else None

    # HTTP
    def _runs(self, filters: list, sort: str = "run_number", limit: int | None = None
              ) -> list[Run]:
        """Runs matching ``filters``: all pages, or only the first ``limit`` runs."""
        runs = [self._run(record) for record in self._records("runs", filters, sort, limit)]
        return sorted(runs, key=lambda r: r.number)

    def _records(self, resource: str, filters: list, sort: str | None = None,
                 limit: int | None = None) -> list[dict]:
        """All records of ``resource`` matching ``filters`` (or the first ``limit``).

        Pages are read until the answer has no ``links.next`` (or its
        ``meta.totalResourceCount`` is reached): a short page is not the end, as
        OMS may cap ``page[limit]`` below what was asked. Each next page is asked
        with the same filters at the offset of the records received so far.
        """
        self._check_meta(resource)
        page = limit or self.page_limit
        records: list[dict] = []
        while True:
            params = [*filters]
            if sort:
                params.append(("sort", sort))
            params += [("page[offset]", len(records)), ("page[limit]", page)]
            body = self._get(resource, params)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise RegistryError(f"OMS answered {resource} without a list of data")
            records += data
            total = (body.get("meta") or {}).get("totalResourceCount")
            if limit is not None and len(records) >= limit:
                return records[:limit]
            if (not data or not (body.get("links") or {}).get("next")
                    or (isinstance(total, int) and len(records) >= total)):
                return records

    def _check_meta(self, resource: str) -> None:
        """Check once that ``resource`` has the attributes this client relies on
        (:data:`OMS_REQUIRED`), from its ``meta`` (as ``omsapi`` reads it)."""
        if resource in self._checked:
            return
        body = self._get(f"{resource}/meta", [])
        fields = ((body.get("meta") or {}).get("fields")
                  if isinstance(body, dict) else None)
        if not isinstance(fields, (dict, list)):
            raise RegistryError(f"OMS answered {resource}/meta without a list of fields")
        missing = [name for name in OMS_REQUIRED.get(resource, ()) if name not in fields]
        if missing:
            raise RegistryError(f"OMS {resource} lack the attribute(s) {', '.join(missing)} "
                                "this client relies on (see the README's OMS section)")
        self._checked.add(resource)

    def _get(self, resource: str, params: list):
        """GET ``resource`` with ``params`` in omsapi's URL form (brackets as they are)."""
        url = f"{self.base_url}/{resource}"
        if params:
            url += "?" + "&".join(f"{key}={quote(str(value), safe=',-')}"
                                  for key, value in params)
        response = self._send(url, resource)
        if response.status_code == 401:   # expired: one new token, one more try
            self._token = None
            response = self._send(url, resource)
        if response.is_redirect:
            raise RegistryError(
                f"OMS did not accept the token for {resource}: it redirected to "
                f"{urlsplit(response.headers.get('Location', '')).netloc or 'a login page'} "
                f"(check that ECAL_OMS_AUDIENCE {self.audience!r} is the audience of "
                f"{self.base_url})")
        if response.status_code in (401, 403):
            raise RegistryError(f"OMS refused {resource} (HTTP {response.status_code}"
                                f"{_reason(response)}): check that client {self.client_id} "
                                f"may read {self.audience}")
        if response.status_code != 200:
            raise RegistryError(f"OMS failed on {resource} (HTTP {response.status_code}"
                                f"{_reason(response)})")
        try:
            return response.json()
        except ValueError:
            raise RegistryError(f"OMS answered {resource} with invalid JSON") from None

    def _send(self, url: str, resource: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._bearer()}",
                   "content-type": "application/json"}
        try:
            return self.session.get(url, headers=headers, timeout=self.timeout,
                                    allow_redirects=False)
        except requests.RequestException as exc:
            raise RegistryError(f"cannot reach OMS at {self.base_url}/{resource.split('?')[0]}:"
                                f" {type(exc).__name__}") from None

    def _bearer(self) -> str:
        """The access token for the OMS audience, from CERN's API-access endpoint
        (fetched on first use, and again after a 401)."""
        if self._token is None:
            form = {"grant_type": "client_credentials", "client_id": self.client_id,
                    "client_secret": self._client_secret, "audience": self.audience}
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

    def _run(self, record) -> Run:
        """A Run from an OMS record, its era from the eras, with the catalogue's names
        for OMS attributes."""
        attributes = record.get("attributes") if isinstance(record, dict) else None
        if not isinstance(attributes, dict):
            raise RegistryError("OMS returned a run without attributes")
        attrs = dict(attributes)
        attrs.setdefault("run_number", record.get("id"))
        for oms_name, name in OMS_ALIASES.items():
            if oms_name in attrs:
                attrs.setdefault(name, attrs[oms_name])
        number = as_int(attrs["run_number"])
        era = self._era_of(number) if number is not None else None
        if era is None:
            raise RegistryError(f"OMS run {attrs['run_number']!r} precedes every era of the "
                                "eras resource")
        attrs["era"] = era
        try:
            return Run.from_attrs(attrs)
        except ValueError as exc:
            raise RegistryError(f"OMS returned a malformed run {record.get('id')!r}: {exc}") \
                from None


# --- choosing a backend ---------------------------------------------------------------

def open_registry(spec: str | None = None, settings: Settings | None = None,
                  chosen: bool = False) -> Registry:
    """The registry named by ``spec``, else by ``$ECAL_RUN_REGISTRY``, else the bundled
    catalogue: ``oms`` for CMS OMS, a path ending in ``.csv``/``.json``, or ``bundled``.

    ``chosen``: the registry must be named (what a prompt campaign fetches from in
    production must never silently be the demo catalogue): ConfigError otherwise.
    """
    origin = ""
    if not spec:
        settings = current(settings)
        spec = settings.run_registry
        origin = " (from ECAL_RUN_REGISTRY)"
    if not spec and chosen:
        raise ConfigError("no run registry chosen: set ECAL_RUN_REGISTRY to oms (CMS OMS), the "
                          f"path of a .csv/.json run catalogue, or {BUNDLED!r} for the demo "
                          "catalogue shipped with ecaljenkins")
    if not spec or spec == BUNDLED:
        return CatalogRegistry(BUNDLED_CATALOGUE)
    if spec == "oms":
        return OmsRegistry(settings=settings)
    if spec.lower().endswith((".csv", ".json")):
        return CatalogRegistry(Path(spec).expanduser())
    raise ConfigError(f"unknown run registry {spec!r}{origin}: use 'oms', the path of a "
                      f".csv or .json run catalogue, or {BUNDLED!r}")


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
