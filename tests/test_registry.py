"""The run registry: the bundled catalogue, catalogue files, CMS OMS (the fake of
tests/oms_fake.py, answering as OMS and CERN SSO do), and the choice of backend."""

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

import oms_fake
from oms_fake import ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, OMS_URL, TOKEN_URL

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
    assert open_registry(settings=Settings(run_registry="bundled")).path == BUNDLED_CATALOGUE
    with pytest.raises(ConfigError, match="no run registry chosen: set ECAL_RUN_REGISTRY"):
        open_registry(settings=Settings(), chosen=True)


def test_open_registry_follows_the_settings(tmp_path):
    path = write(tmp_path / "mine.csv", HEADER + catalogue_row(42))
    mine = Settings(run_registry=str(path))
    assert [r.number for r in open_registry(settings=mine).after(0)] == [42]
    assert open_registry(str(BUNDLED_CATALOGUE), mine).path == BUNDLED_CATALOGUE
    assert isinstance(open_registry(settings=replace(OMS, run_registry="oms")), OmsRegistry)
    with pytest.raises(ConfigError, match=r"unknown run registry 'runs.txt' \(from "
                                          r"ECAL_RUN_REGISTRY\): use 'oms', the path"):
        open_registry(settings=Settings(run_registry="runs.txt"))
    with pytest.raises(ConfigError, match=r"unknown run registry 'omss': use 'oms'"):
        open_registry("omss")


@pytest.mark.parametrize("missing", ["oms_client_id", "oms_client_secret"])
def test_oms_needs_client_credentials(missing):
    with pytest.raises(ConfigError, match=f"^ECAL_{missing.upper()} is not set"):
        open_registry("oms", replace(OMS, **{missing: None}))


# --- CMS OMS (tests/oms_fake.py) -------------------------------------------------------

def filters(query):
    return [(k, v) for k, v in query if k.startswith("filter")]


def as_sent(url):
    """``url`` as requests sends it when omsapi calls ``requests.get(url)``."""
    return requests.Request("GET", url).prepare().url


def test_oms_requests_are_the_ones_omsapi_sends(oms):
    """omsapi 0.9.8: the token from the API-access endpoint for the audience, then the
    resource's meta and its query, brackets unencoded, filters, sort, offset, limit."""
    registry = OmsRegistry(settings=OMS, page_limit=100)
    runs = registry.runs([355872, 355862])
    assert [r.number for r in runs] == [355862, 355872]
    token, *gets = oms.requests
    assert (token.method, token.url) == ("POST", TOKEN_URL)
    assert dict(parse_qsl(token.body)) == {"grant_type": "client_credentials",
                                           "client_id": CLIENT_ID,
                                           "client_secret": CLIENT_SECRET,
                                           "audience": "cmsoms-prod"}
    # omsapi builds the URL text itself; requests then encodes it on the way out
    assert [g.url for g in gets] == [as_sent(url) for url in (
        f"{OMS_URL}/runs/meta",
        f"{OMS_URL}/runs?filter[run_number][GE]=355862&filter[run_number][LE]=355872"
        "&sort=run_number&page[offset]=0&page[limit]=100",
        f"{OMS_URL}/eras/meta", f"{OMS_URL}/eras?sort=start_run&page[offset]=0&page[limit]=100")]
    assert all(g.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}" and
               g.headers["content-type"] == "application/json" for g in gets)
    run = runs[0]
    assert (run.fill, run.era, run.sequence, run.closed) == (7966, "Run2022C", "GLOBAL-RUN", True)
    assert run.attrs["stable_beam"] is True and run.get("stable_beams") is True
    assert run.get("lumisections") == 321 and run.get("cms_recorded_lumi") == 45.6
    assert run.get("components") == ["ECAL", "HCAL"] and run.get("fill") == 7966
    registry.run_range(355000, 356000)
    assert oms.tokens_issued == 1 and len(oms.queries("runs/meta")) == 1   # meta read once


def test_oms_eras_come_from_the_eras_resource(oms):
    """OMS runs carry no era: an era is its run range, each run's era from the eras."""
    registry = OmsRegistry(settings=OMS)
    assert [(r.number, r.era) for r in registry.era("Run2022D")] == [(357538, "Run2022D"),
                                                                     (357540, "Run2022D")]
    assert filters(oms.queries()[-1]) == [("filter[run_number][GE]", "357538"),
                                          ("filter[run_number][LE]", "357900")]
    assert [(r.number, r.era) for r in registry.after(355870)] == [(355872, "Run2022C"),
                                                                  (357538, "Run2022D")]
    assert filters(oms.queries()[-1]) == [("filter[run_number][GT]", "355870")]
    assert [r.number for r in registry.after(357538, closed_only=False)] == [357540]
    assert registry.era("Run2022H") == []   # a known era without runs
    assert registry.eras() == ["Run2022C", "Run2022D", "Run2022H"]
    assert len(oms.queries("eras")) == 1
    assert all("era" not in record for record in oms.resources["runs"])


def test_oms_ongoing_era_and_runs_before_every_era(oms):
    oms.resources["eras"][0] = dict(oms.resources["eras"][0], end_run=None)   # Run2022D goes on
    oms.resources["eras"].pop()                                              # no Run2022H
    oms.resources["runs"].append(oms_fake.oms_run(358000, 8200))
    registry = OmsRegistry(settings=OMS)
    assert [r.number for r in registry.era("Run2022D")] == [357538, 357540, 358000]
    assert filters(oms.queries()[-1]) == [("filter[run_number][GT]", "357537")]
    oms.resources["runs"].append(oms_fake.oms_run(300000, 7000))
    with pytest.raises(RegistryError, match="^OMS run 300000 precedes every era"):
        registry.runs([300000])


def test_oms_pages_are_followed_past_a_capped_page(oms):
    """OMS gives at most page_cap records whatever page[limit] asks: a short page is
    not the end while the answer links a next page."""
    oms.page_cap = 2
    registry = OmsRegistry(settings=OMS, page_limit=1000)
    runs = registry.run_range(355000, 358000)
    assert [r.number for r in runs] == [355862, 355863, 355870, 355872, 357538, 357540]
    queries = oms.queries()
    assert [dict(q)["page[offset]"] for q in queries] == ["0", "2", "4"]
    assert all(filters(q) == [("filter[run_number][GE]", "355000"),
                              ("filter[run_number][LE]", "358000")] for q in queries)


def test_oms_fill_end(oms, bundled):
    registry = OmsRegistry(settings=OMS)
    assert registry.fill_end(7966) == "2022-07-21T23:10:00Z"
    assert registry.fill_end(8118) is None            # the fill goes on
    assert filters(oms.queries("fills")[-1]) == [("filter[fill_number][EQ]", "8118")]
    with pytest.raises(NotFound, match="^unknown fill 9999$"):
        registry.fill_end(9999)
    oms.resources["fills"][0] = dict(oms_fake.FILLS[0], end_time="dumped")
    with pytest.raises(RegistryError, match="^OMS returned a malformed fill 7966: end_time "
                                            "'dumped' is not an ISO 8601 time$"):
        registry.fill_end(7966)
    oms.resources["fills"][0] = dict(oms_fake.FILLS[0], fill_number="7966")
    assert registry.fill_end(7966) == "2022-07-21T23:10:00Z"   # OMS' id is text
    oms.resources["fills"][0] = {k: v for k, v in oms_fake.FILLS[0].items() if k != "end_time"}
    with pytest.raises(RegistryError, match="^OMS answered fill 7966 with another record"):
        registry.fill_end(7966)
    everything = bundled.after(0, closed_only=False)
    assert bundled.fill_end(everything[-1].fill) is None     # no later fill yet
    first = [r for r in everything if r.fill == everything[0].fill]
    assert bundled.fill_end(first[0].fill) == first[-1].end_time   # its last run's end
    with pytest.raises(NotFound, match="^unknown fill 1$"):
        bundled.fill_end(1)


def test_oms_attributes_relied_on_are_checked_against_the_meta(oms):
    oms.meta["runs"].remove("end_time")
    with pytest.raises(RegistryError, match=r"^OMS runs lack the attribute\(s\) end_time "):
        OmsRegistry(settings=OMS).runs([355862])


def test_oms_audience_of_another_instance(oms):
    """A token for the production audience is not accepted by another instance: its
    front end redirects to the SSO login page, an error naming the audience."""
    base = "https://vocms0185.cern.ch/agg/api/v1"
    other = oms_fake.OmsFake(oms.mock, base_url=base, audience="cmsoms-int-0185")
    with pytest.raises(RegistryError) as err:
        OmsRegistry(base, settings=OMS).eras()
    assert str(err.value) == ("OMS did not accept the token for eras/meta: it redirected to "
                              "auth.cern.ch (check that ECAL_OMS_AUDIENCE 'cmsoms-prod' is the "
                              f"audience of {base})")
    assert_secret_free(str(err.value))
    settings = Settings.from_env({"ECAL_OMS_CLIENT_ID": CLIENT_ID,
                                  "ECAL_OMS_CLIENT_SECRET": CLIENT_SECRET,
                                  "ECAL_OMS_URL": base + "/",
                                  "ECAL_OMS_AUDIENCE": "cmsoms-int-0185"})
    assert len(open_registry("oms", settings).run_range(355862, 355863)) == 2
    assert other.tokens_issued == 1 and other.tokens[other.requests[-1].headers[
        "Authorization"].removeprefix("Bearer ")] == "cmsoms-int-0185"


def test_oms_token_url_from_the_environment():
    settings = Settings.from_env({"ECAL_OMS_CLIENT_ID": CLIENT_ID,
                                  "ECAL_OMS_CLIENT_SECRET": CLIENT_SECRET,
                                  "ECAL_OMS_TOKEN_URL": "https://auth.example.cern/token"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = oms_fake.OmsFake(mock, token_url="https://auth.example.cern/token")
        assert len(open_registry("oms", settings).run_range(355862, 355863)) == 2
        assert fake.tokens_issued == 1


def test_oms_expired_token_is_renewed_once(oms):
    registry = OmsRegistry(settings=OMS)
    assert registry.eras()
    oms.expire_tokens()
    assert len(registry.run_range(355862, 355863)) == 2
    assert oms.tokens_issued == 2 and len(oms.queries("runs")) == 1
    # a new token refused as well: an error, not a loop
    oms.fail("runs", 401, {"errors": [{"status": "401", "title": "Unauthorized",
                                       "detail": "Token expired"}]}, times=2)
    with pytest.raises(RegistryError) as err:
        registry.after(355000)
    assert str(err.value) == (f"OMS refused runs (HTTP 401: Token expired): check that client "
                              f"{CLIENT_ID} may read cmsoms-prod")
    assert oms.tokens_issued == 3
    assert_secret_free(str(err.value))


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
        registry.runs([355000])


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
    (500, {"errors": [{"status": "500", "title": "Internal Server Error",
                       "detail": "ORA-01013: user requested cancel\nof current operation"}]},
     "OMS failed on runs (HTTP 500: ORA-01013: user requested cancel of current operation)"),
    (503, "<html>down</html>", "OMS failed on runs (HTTP 503)"),
    (200, "<html>maintenance</html>", "OMS answered runs with invalid JSON"),
])
def test_oms_server_errors(oms, status, body, message):
    oms.fail("runs", status, body)
    with pytest.raises(RegistryError) as err:
        OmsRegistry(settings=OMS).after(355000)
    assert str(err.value) == message
    assert_secret_free(str(err.value))


def test_oms_unreachable(oms):
    registry = OmsRegistry(settings=OMS, base_url="https://cmsoms.invalid/agg/api/v1")
    with pytest.raises(RegistryError) as err:
        registry.runs([355862])
    assert str(err.value) == ("cannot reach OMS at https://cmsoms.invalid/agg/api/v1/runs/meta: "
                              "ConnectionError")
    assert_secret_free(str(err.value))


def test_oms_sso_unreachable(oms):
    oms.mock.replace(responses.POST, TOKEN_URL, body=requests.ConnectTimeout("timed out"))
    with pytest.raises(RegistryError, match=f"^cannot reach CERN SSO at {TOKEN_URL}: "
                                            "ConnectTimeout$"):
        OmsRegistry(settings=OMS).eras()


def test_oms_malformed_run(oms):
    oms.resources["runs"] = [dict(oms_fake.RUNS[0], start_time=None)]
    with pytest.raises(RegistryError, match=r"^OMS returned a malformed run '355862': "
                                            r"start_time is empty$"):
        OmsRegistry(settings=OMS).runs([355862])
