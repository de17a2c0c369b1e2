"""The run registry: the bundled catalogue, catalogue files, CMS OMS (faked with
``responses`` answering as OMS and CERN SSO do), and the choice of backend."""

import csv
import json
import re
from collections import Counter
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from ecaljenkins.errors import ConfigError, InputError, NotFound, RegistryError
from ecaljenkins.filters import Filter
from ecaljenkins.registry import (BUNDLED_CATALOGUE, CatalogRegistry, OmsRegistry, Run,
                                  open_registry)
from ecaljenkins.settings import Settings

OMS_URL = "https://cmsoms.cern.ch/agg/api/v1"
TOKEN_URL = "https://auth.cern.ch/auth/realms/cern/protocol/openid-connect/token"
CLIENT_ID = "ecal-automation"
CLIENT_SECRET = "oms-Secret-9f3b"
ACCESS_TOKEN = "eyJhbGciOi.access-Token-7c1d"
OMS = Settings(oms_client_id=CLIENT_ID, oms_client_secret=CLIENT_SECRET)
HEADER = ("run_number,fill_number,era,sequence,start_time,end_time,stable_beams,"
          "lumisections,b_field,l1_menu,cms_recorded_lumi\n")


@pytest.fixture(scope="module")
def bundled():
    return CatalogRegistry(BUNDLED_CATALOGUE)


def write(path, text):
    path.write_text(text)
    return path


def catalogue_row(number, fill=8000, era="Run2022C", sequence="GLOBAL-RUN",
                  start="2022-07-21T10:00:00Z", end="2022-07-21T12:00:00Z",
                  extra="true,300,3.8,L1Menu_v1,12.5"):
    return f"{number},{fill},{era},{sequence},{start},{end},{extra}\n"


# --- the bundled catalogue -------------------------------------------------------

def test_bundled_catalogue_looks_like_2022_data_taking(bundled):
    runs = bundled.run_range(0, 10**7)
    assert 250 <= len(runs) <= 350
    assert bundled.eras() == ["Run2022B", "Run2022C", "Run2022D", "Run2022E", "Run2022F",
                              "Run2022G"]
    assert [r.number for r in runs] == sorted(r.number for r in runs)
    assert [r.start_time for r in runs] == sorted(r.start_time for r in runs)
    for before, after in zip(runs, runs[1:]):
        assert before.end_time is None or before.start_time < before.end_time <= after.start_time
    assert [r.closed for r in runs[-2:]] == [False, False]
    assert all(r.closed for r in runs[:-2])
    sequences = Counter(r.sequence for r in runs)
    assert set(sequences) == {"GLOBAL-RUN", "LOCAL-RUN", "MINIDAQ"}
    assert 0.10 <= 1 - sequences["GLOBAL-RUN"] / len(runs) <= 0.20
    for era in bundled.eras():
        fills = Counter(r.fill for r in bundled.era(era))
        assert len(fills) >= 3 and max(fills.values()) >= 3
    assert len(bundled.era("Run2022G")) <= 30
    assert (bundled.era("Run2022B")[0].number, bundled.era("Run2022B")[-1].number) == (355100,
                                                                                      355769)


def test_attributes_are_typed_and_aliased(bundled):
    run = bundled.runs([355100])[0]
    assert (run.number, run.fill, run.era, run.sequence) == (355100, 7920, "Run2022B",
                                                            "GLOBAL-RUN")
    assert run.start_time == "2022-07-05T16:08:30Z" and run.closed
    assert run.attrs["run_number"] == 355100 and run.attrs["era"] == "Run2022B"
    assert run.attrs["stable_beams"] is True
    assert isinstance(run.attrs["lumisections"], int)
    assert isinstance(run.attrs["b_field"], float) and abs(run.attrs["b_field"] - 3.8) < 0.01
    assert isinstance(run.attrs["cms_recorded_lumi"], float)
    assert run.attrs["l1_menu"] == "L1Menu_Collisions2022_v1_2_0"
    assert run.get("run") == 355100 and run.get("fill") == 7920
    assert run.get("sequence") == "GLOBAL-RUN" and run.get("lumisections") > 0
    assert run.get("no_such_attribute") is None
    local = next(r for r in bundled.era("Run2022C") if r.sequence == "LOCAL-RUN")
    assert local.attrs["cms_recorded_lumi"] is None and local.attrs["stable_beams"] is False


def test_runs_by_numbers_are_sorted_and_unique(bundled):
    runs = bundled.runs([355113, 355100, "355115", 355113])
    assert [r.number for r in runs] == [355100, 355113, 355115]
    assert bundled.runs([]) == []


def test_run_range_is_inclusive(bundled):
    assert [r.number for r in bundled.run_range(355100, 355115)] == [355100, 355113, 355115]
    assert [r.number for r in bundled.run_range(355113, 355113)] == [355113]
    assert bundled.run_range(355101, 355112) == []
    with pytest.raises(InputError, match="invalid run range 355200-355100"):
        bundled.run_range(355200, 355100)
    with pytest.raises(InputError, match="invalid run number 'abc'"):
        bundled.run_range("abc", 355100)


def test_era_holds_its_runs_only(bundled):
    runs = bundled.era("Run2022D")
    assert runs and all(r.era == "Run2022D" for r in runs)
    assert all(357538 <= r.number <= 357900 for r in runs)
    assert len(runs) == len([r for r in bundled.run_range(357538, 357900)])


def test_after_skips_open_runs_unless_asked(bundled):
    last_closed, *open_runs = [r.number for r in bundled.era("Run2022G")[-3:]]
    assert [r.number for r in bundled.after(last_closed - 1)] == [last_closed]
    assert [r.number for r in bundled.after(last_closed, closed_only=False)] == open_runs
    assert bundled.after(last_closed) == []
    assert len(bundled.after(0)) == len(bundled.run_range(0, 10**7)) - 2


def test_unknown_runs_are_listed_with_the_closest_known_run(bundled):
    with pytest.raises(NotFound) as err:
        bundled.runs([355100, 355101])
    assert str(err.value) == "unknown run 355101 (closest known run: 355100)"
    with pytest.raises(NotFound) as err:
        bundled.runs([355100, *range(355101, 355109)])
    assert str(err.value) == ("unknown runs 355101, 355102, 355103, 355104, 355105 and 3 more "
                              "(closest known run: 355100)")
    with pytest.raises(NotFound, match=r"unknown run 362800 \(closest known run: 362760\)"):
        bundled.runs([362800])


def test_unknown_era_lists_the_closest_first(bundled):
    with pytest.raises(NotFound) as err:
        bundled.era("run2022e")
    assert str(err.value) == ("unknown era 'run2022e'; known eras: Run2022E, Run2022B, "
                              "Run2022C, Run2022D, Run2022F, Run2022G")


def test_stored_attributes_rebuild_the_same_run(bundled):
    """A campaign stores ``attrs`` as JSON at injection and rebuilds the run later."""
    for run in bundled.run_range(362740, 362760):
        assert Run.from_attrs(json.loads(json.dumps(run.attrs))) == run


# --- catalogue files ---------------------------------------------------------------

def test_csv_catalogue_converts_cells(tmp_path):
    path = write(tmp_path / "runs.csv", HEADER
                 + catalogue_row(2, extra="FALSE,,3.75,L1Menu_v1,")
                 + catalogue_row(1, fill="", sequence="MINIDAQ", end="")
                 + "\n")
    one, two = CatalogRegistry(path).runs([1, 2])
    assert (one.fill, one.end_time, one.closed, one.sequence) == (0, None, False, "MINIDAQ")
    assert one.attrs["end_time"] is None and one.attrs["fill_number"] == 0
    assert one.attrs["cms_recorded_lumi"] == 12.5 and one.attrs["lumisections"] == 300
    assert two.attrs["stable_beams"] is False and two.attrs["lumisections"] is None
    assert two.attrs["b_field"] == 3.75 and two.attrs["cms_recorded_lumi"] is None
    assert two.closed


@pytest.mark.parametrize("text, value", [
    ("TRUE", True), ("false", False), ("42", 42), ("-7", -7), ("3.75", 3.75), ("1e3", 1000.0),
    ("1_000", "1_000"), ("nan", "nan"), ("inf", "inf"), ("3551\u00b2", "3551\u00b2"),
    ("L1Menu_v1", "L1Menu_v1")])
def test_a_filter_and_a_catalogue_cell_read_a_value_alike(tmp_path, text, value):
    path = write(tmp_path / "runs.csv", HEADER + catalogue_row(1, extra=f"true,1,1,{text},1"))
    cell = CatalogRegistry(path).runs([1])[0].attrs["l1_menu"]
    wanted = Filter.parse(f"l1_menu == {text}").value
    assert (cell, type(cell)) == (wanted, type(wanted)) == (value, type(value))


def test_text_columns_stay_text(tmp_path):
    path = write(tmp_path / "runs.csv", HEADER + catalogue_row(5, era="2022"))
    assert CatalogRegistry(path).era("2022")[0].era == "2022"


@pytest.mark.parametrize("wrapped", [False, True])
def test_json_catalogue(tmp_path, wrapped):
    runs = [{"run_number": 10, "fill_number": 9, "era": "RunX", "sequence": "GLOBAL-RUN",
             "start_time": "2022-07-21T10:00:00Z", "end_time": "", "stable_beams": True,
             "b_field": 3.8, "hlt_key": "/cdaq/x"},
            {"run_number": "7", "fill_number": 9, "era": "RunX", "sequence": "LOCAL-RUN",
             "start_time": "2022-07-21T08:00:00Z", "end_time": "2022-07-21T09:00:00Z"}]
    path = write(tmp_path / "runs.json", json.dumps({"runs": runs} if wrapped else runs))
    registry = CatalogRegistry(path)
    assert [r.number for r in registry.era("RunX")] == [7, 10]
    run = registry.runs([10])[0]
    assert run.end_time is None and run.attrs["stable_beams"] is True
    assert run.attrs["b_field"] == 3.8 and run.get("hlt_key") == "/cdaq/x"
    assert registry.after(5) == registry.runs([7])


def test_large_catalogue(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER.strip().split(","))
        for number in range(400000, 412000):
            writer.writerow([number, 9000 + number // 50 % 1000, f"Run2030{'AB'[number % 2]}",
                             "GLOBAL-RUN", "2030-01-01T00:00:00Z", "2030-01-01T01:00:00Z",
                             "true", 100, 3.8, "menu", 1.5])
    registry = CatalogRegistry(path)
    assert len(registry.era("Run2030A")) == 6000
    assert [r.number for r in registry.run_range(405000, 405002)] == [405000, 405001, 405002]
    assert [r.number for r in registry.after(411998)] == [411999]
    assert [r.number for r in registry.runs([411000, 400001])] == [400001, 411000]


@pytest.mark.parametrize("name, text, message", [
    ("runs.csv", "run_number,era,sequence,start_time\n1,A,B,C\n",
     "missing required columns fill_number, end_time"),
    ("runs.csv", "", "missing required columns run_number, fill_number"),
    ("runs.csv", HEADER + catalogue_row(1) + catalogue_row("12a"),
     "line 3: run_number '12a' is not an integer"),
    ("runs.csv", HEADER + catalogue_row(1) + catalogue_row(2) + catalogue_row(1),
     "line 4: duplicate run number 1 (already on line 2)"),
    ("runs.csv", HEADER + catalogue_row(1, fill="7.5"),
     "line 2: fill_number 7.5 is not an integer"),
    ("runs.csv", HEADER + catalogue_row(1, era=""), "line 2: era is empty"),
    ("runs.csv", HEADER + catalogue_row(1, start="yesterday"),
     "line 2: start_time 'yesterday' is not an ISO 8601 time"),
    ("runs.csv", HEADER + "1,2,RunX\n", "line 2: 11 fields expected as in the header"),
    ("runs.json", '[{"run_number": 1,', "invalid JSON (Expecting property name"),
    ("runs.json", '{"data": []}', 'expected a list of runs or {"runs": [...]}'),
    ("runs.json", '[17]', "run 1: expected an object, got int"),
    ("runs.json", '[{"run_number": 1, "fill_number": 2, "era": "A"}]',
     "run 1: missing sequence, start_time, end_time"),
])
def test_malformed_catalogue(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    registry = CatalogRegistry(path)
    with pytest.raises(ConfigError) as err:
        registry.eras()
    assert str(err.value).startswith(f"run catalogue {path}: ")
    assert message in str(err.value)


def test_unreadable_catalogue(tmp_path):
    registry = CatalogRegistry(tmp_path / "missing.csv")   # lazy: no error yet
    with pytest.raises(ConfigError, match=f"cannot read run catalogue {tmp_path}/missing.csv: "
                                          "No such file or directory"):
        registry.runs([1])
    (tmp_path / "latin1.csv").write_bytes(HEADER.encode() + b"1,2,Run\xe9,G,x,y,,,,,\n")
    with pytest.raises(ConfigError, match="latin1.csv: not UTF-8 text"):
        CatalogRegistry(tmp_path / "latin1.csv").eras()


def test_catalogue_is_read_once(tmp_path):
    path = write(tmp_path / "runs.csv", HEADER + catalogue_row(1) + catalogue_row(2))
    registry = CatalogRegistry(path)
    assert registry.eras() == ["Run2022C"]
    path.unlink()
    assert [r.number for r in registry.run_range(1, 2)] == [1, 2]


# --- choosing the backend ------------------------------------------------------------

def test_open_registry_defaults_to_the_bundled_catalogue():
    registry = open_registry(settings=Settings())
    assert isinstance(registry, CatalogRegistry) and registry.path == BUNDLED_CATALOGUE


def test_open_registry_follows_the_settings(tmp_path):
    path = write(tmp_path / "mine.csv", HEADER + catalogue_row(42))
    mine = Settings(run_registry=str(path))
    assert [r.number for r in open_registry(settings=mine).after(0)] == [42]
    assert open_registry(str(BUNDLED_CATALOGUE), mine).path == BUNDLED_CATALOGUE
    assert isinstance(open_registry(settings=replace(OMS, run_registry="oms")), OmsRegistry)
    with pytest.raises(ConfigError, match=r"unknown run registry 'runs.txt' \(from "
                                          r"ECAL_RUN_REGISTRY\): use 'oms' or"):
        open_registry(settings=Settings(run_registry="runs.txt"))
    with pytest.raises(ConfigError, match=r"unknown run registry 'omss': use 'oms'"):
        open_registry("omss")


@pytest.mark.parametrize("missing", ["oms_client_id", "oms_client_secret"])
def test_oms_needs_client_credentials(missing):
    with pytest.raises(ConfigError, match=f"^ECAL_{missing.upper()} is not set"):
        open_registry("oms", replace(OMS, **{missing: None}))


# --- CMS OMS ---------------------------------------------------------------------------

def oms_run(number, fill, era, sequence="GLOBAL-RUN", end="2022-07-21T12:00:00Z"):
    """A run as OMS v1 returns it (a subset of the real attributes)."""
    return {"run_number": number, "fill_number": fill, "era": era, "sequence": sequence,
            "start_time": "2022-07-21T10:00:00Z", "end_time": end,
            "stable_beam": sequence == "GLOBAL-RUN", "last_lumisection_number": 321,
            "recorded_lumi": 45.6, "b_field": 3.8, "l1_menu": "L1Menu_Collisions2022_v1_3_0",
            "hlt_key": "/cdaq/physics/Run2022/2e34/v1.3.0/HLT/V2", "components": ["ECAL", "HCAL"]}


OMS_RUNS = [oms_run(355862, 7966, "Run2022C"), oms_run(355863, 7966, "Run2022C", "LOCAL-RUN"),
            oms_run(355870, 7967, "Run2022C"), oms_run(355872, 7967, "Run2022C"),
            oms_run(357538, 8118, "Run2022D"), oms_run(357540, 8118, "Run2022D", end=None)]
OMS_ERAS = [{"name": "Run2022D", "start_fill": 8118, "end_fill": 8151, "start_run": 357538,
             "end_run": 357900},
            {"name": "Run2022C", "start_fill": 7966, "end_fill": 8116, "start_run": 355862,
             "end_run": 357482},
            {"name": "Run2022H", "start_fill": 8500, "end_fill": 8500, "start_run": 362800,
             "end_run": 362801}]
_FILTER = re.compile(r"filter\[(\w+)\]\[(EQ|NEQ|LT|GT|LE|GE)\]")
_COMPARE = {"EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "LT": lambda a, b: a < b,
            "GT": lambda a, b: a > b, "LE": lambda a, b: a <= b, "GE": lambda a, b: a >= b}


class OmsFake:
    """CERN SSO and CMS OMS as they answer: a client-credentials token endpoint, and
    JSON:API resources with filter/sort/page query parameters and next links."""

    def __init__(self, mock, base_url=OMS_URL, token_url=TOKEN_URL):
        self.base_url = base_url
        self.tokens_issued = 0
        self.resources = {"runs": OMS_RUNS, "eras": OMS_ERAS}
        mock.add_callback(responses.POST, token_url, callback=self.token)
        for name in self.resources:
            mock.add_callback(responses.GET, re.compile(re.escape(f"{base_url}/{name}") + r"\?"),
                              callback=self.resource)
        self.mock = mock

    def token(self, request):
        form = dict(parse_qsl(request.body))
        if form != {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET, "audience": "cmsoms-prod"}:
            return 401, {}, json.dumps({"error": "unauthorized_client",
                                        "error_description": "Invalid client credentials"})
        self.tokens_issued += 1
        return 200, {}, json.dumps({"access_token": ACCESS_TOKEN, "expires_in": 1200,
                                    "token_type": "Bearer", "scope": "profile email"})

    def resource(self, request):
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {}, json.dumps({"errors": [{"status": "401", "title": "Unauthorized",
                                                    "detail": "Missing or invalid token"}]})
        url = urlsplit(request.url)
        name = url.path.rsplit("/", 1)[-1]
        params = parse_qsl(url.query)
        records = list(self.resources[name])
        for key, value in params:
            if match := _FILTER.fullmatch(key):
                attr, op = match.groups()
                records = [r for r in records
                           if _COMPARE[op](r[attr], type(r[attr])(value))]
        query = dict(params)
        if "sort" in query:
            attr = query["sort"].lstrip("-")
            records.sort(key=lambda r: r[attr], reverse=query["sort"].startswith("-"))
        offset, limit = int(query.get("page[offset]", 0)), int(query.get("page[limit]", 10))
        page = records[offset:offset + limit]
        links = {"prev": None, "next": None}
        if offset + limit < len(records):
            links["next"] = f"{self.base_url}/{name}?page[offset]={offset + limit}"
        body = {"data": [{"id": str(r.get("run_number", r.get("name"))), "type": name,
                          "attributes": r} for r in page],
                "links": links, "meta": {"totalResourceCount": len(records)}}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def queries(self, name="runs"):
        """Query parameters of every GET of ``name`` so far."""
        return [parse_qsl(urlsplit(call.request.url).query) for call in self.mock.calls
                if call.request.method == "GET" and
                urlsplit(call.request.url).path.endswith("/" + name)]


@pytest.fixture
def oms():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield OmsFake(mock)


def filters(query):
    return [(k, v) for k, v in query if k.startswith("filter")]


def test_oms_runs_by_numbers_is_one_range_query(oms):
    registry = OmsRegistry(settings=OMS, page_limit=100)
    runs = registry.runs([355872, 355862])
    assert [r.number for r in runs] == [355862, 355872]
    [query] = oms.queries()
    assert filters(query) == [("filter[run_number][GE]", "355862"),
                              ("filter[run_number][LE]", "355872")]
    assert ("sort", "run_number") in query and ("page[offset]", "0") in query
    run = runs[0]
    assert (run.fill, run.era, run.sequence, run.closed) == (7966, "Run2022C", "GLOBAL-RUN", True)
    assert run.attrs["stable_beam"] is True and run.get("stable_beams") is True
    assert run.get("lumisections") == 321 and run.get("cms_recorded_lumi") == 45.6
    assert run.get("components") == ["ECAL", "HCAL"] and run.get("fill") == 7966
    registry.era("Run2022C")
    assert oms.tokens_issued == 1


def test_oms_pages_are_followed(oms):
    registry = OmsRegistry(settings=OMS, page_limit=2)
    runs = registry.run_range(355000, 356000)
    assert [r.number for r in runs] == [355862, 355863, 355870, 355872]
    queries = oms.queries()
    assert [dict(q)["page[offset]"] for q in queries] == ["0", "2"]
    assert all(dict(q)["page[limit]"] == "2" for q in queries)
    assert all(filters(q) == [("filter[run_number][GE]", "355000"),
                              ("filter[run_number][LE]", "356000")] for q in queries)
    assert len(registry.era("Run2022D")) == 2
    assert len(oms.queries()) == 3   # one short page: no second request


def test_oms_era_and_after(oms):
    registry = OmsRegistry(settings=OMS)
    assert [r.number for r in registry.era("Run2022D")] == [357538, 357540]
    assert filters(oms.queries()[-1]) == [("filter[era][EQ]", "Run2022D")]
    assert [r.number for r in registry.after(355870)] == [355872, 357538]
    assert filters(oms.queries()[-1]) == [("filter[run_number][GT]", "355870")]
    assert [r.number for r in registry.after(357538, closed_only=False)] == [357540]
    assert registry.era("Run2022H") == []   # a known era without runs
    assert registry.eras() == ["Run2022C", "Run2022D", "Run2022H"]


def test_oms_unknown_era_and_runs(oms):
    registry = OmsRegistry(settings=OMS)
    with pytest.raises(NotFound, match=r"^unknown era 'Run2022c'; known eras: Run2022C, "
                                       r"Run2022D, Run2022H$"):
        registry.era("Run2022c")
    with pytest.raises(NotFound, match=r"^unknown runs 355864, 355865 \(closest known run: "
                                       r"355863\)$"):
        registry.runs([355862, 355864, 355865])
    with pytest.raises(NotFound, match=r"closest known run: 357540\)$"):
        registry.runs([400000])
    with pytest.raises(NotFound, match=r"closest known run: 355862\)$"):
        registry.runs([1])


def test_oms_urls_from_the_environment():
    settings = Settings.from_env({"ECAL_OMS_CLIENT_ID": CLIENT_ID,
                                  "ECAL_OMS_CLIENT_SECRET": CLIENT_SECRET,
                                  "ECAL_OMS_URL": "https://vocms0185.cern.ch/agg/api/v1/",
                                  "ECAL_OMS_TOKEN_URL": "https://auth.example.cern/token"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = OmsFake(mock, base_url="https://vocms0185.cern.ch/agg/api/v1",
                       token_url="https://auth.example.cern/token")
        assert len(open_registry("oms", settings).run_range(355862, 355863)) == 2
        assert fake.tokens_issued == 1


def assert_secret_free(message):
    assert CLIENT_SECRET not in message and ACCESS_TOKEN not in message


def test_oms_bad_credentials(oms):
    wrong = replace(OMS, oms_client_secret="wrong-" + CLIENT_SECRET)
    with pytest.raises(RegistryError) as err:
        OmsRegistry(settings=wrong).era("Run2022C")
    assert str(err.value) == (f"CERN SSO refused the OMS client {CLIENT_ID} (HTTP 401: "
                              "Invalid client credentials)")
    assert "wrong-" not in str(err.value)
    assert_secret_free(str(err.value))


@pytest.mark.parametrize("status, body, message", [
    (401, {"errors": [{"status": "401", "title": "Unauthorized", "detail": "Token expired"}]},
     f"OMS refused runs (HTTP 401: Token expired): check that client {CLIENT_ID} may read "
     "cmsoms-prod"),
    (500, {"errors": [{"status": "500", "title": "Internal Server Error",
                       "detail": "ORA-01013: user requested cancel\nof current operation"}]},
     "OMS failed on runs (HTTP 500: ORA-01013: user requested cancel of current operation)"),
    (503, None, "OMS failed on runs (HTTP 503)"),
])
def test_oms_server_errors(oms, status, body, message):
    oms.mock.replace(responses.GET, re.compile(re.escape(f"{OMS_URL}/runs") + r"\?"),
                     status=status, body=json.dumps(body) if body else "<html>down</html>")
    with pytest.raises(RegistryError) as err:
        OmsRegistry(settings=OMS).after(355000)
    assert str(err.value) == message
    assert_secret_free(str(err.value))


def test_oms_unreachable(oms):
    registry = OmsRegistry(settings=OMS, base_url="https://cmsoms.invalid/agg/api/v1")
    with pytest.raises(RegistryError) as err:
        registry.runs([355862])
    assert str(err.value) == ("cannot reach OMS at https://cmsoms.invalid/agg/api/v1/runs: "
                              "ConnectionError")
    assert_secret_free(str(err.value))


def test_oms_sso_unreachable(oms):
    oms.mock.replace(responses.POST, TOKEN_URL, body=requests.ConnectTimeout("timed out"))
    with pytest.raises(RegistryError, match=f"^cannot reach CERN SSO at {TOKEN_URL}: "
                                            "ConnectTimeout$"):
        OmsRegistry(settings=OMS).eras()


def test_oms_malformed_run(oms):
    broken = dict(OMS_RUNS[0], start_time=None)
    oms.resources["runs"] = [broken]
    with pytest.raises(RegistryError, match=r"^OMS returned a malformed run '355862': "
                                            r"start_time is empty$"):
        OmsRegistry(settings=OMS).runs([355862])
