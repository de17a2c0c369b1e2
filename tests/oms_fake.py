"""The one fake CMS OMS (and CERN SSO) of the test suite, answering through ``responses``.

Modelled on what the servers answer to CMS' own client, ``omsapi`` 0.9.8 (read
from its source) and on CERN's API-access documentation:

* **Token.** ``POST https://auth.cern.ch/auth/realms/cern/api-access/token`` with
  the form ``grant_type=client_credentials, client_id, client_secret, audience``
  gives a bearer token for that audience (wrong credentials: 401 with an OpenID
  ``error_description``). A token expires (:meth:`OmsFake.expire_tokens`): OMS
  then answers 401.
* **OMS.** ``GET <base>/<resource>?filter[attr][OP]=v&sort=attr&page[offset]=N
  &page[limit]=M`` (JSON:API) for ``runs``, ``eras`` and ``fills``, and
  ``GET <base>/<resource>/meta`` (``{"meta": {"fields": {...}}}``). A request
  without a token valid for the OMS audience is redirected (302) to the SSO login
  page, as OMS' front end does for any unauthenticated request. Pages hold at
  most :attr:`OmsFake.page_cap` records whatever ``page[limit]`` asks; a page
  with more after it has a ``links.next`` URL; ``meta.totalResourceCount`` only
  with ``include=meta``. Runs have no ``era`` attribute: eras are their own
  resource (``start_run``/``end_run``); a fill has ``end_time`` null while it
  goes on (its ``end_stable_beam`` may be set before: the fill and its runs go on).

Every request is kept in :attr:`OmsFake.requests` (method, URL as sent, headers,
body) so a test can hold the client to the requests ``omsapi`` sends.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import responses

OMS_URL = "https://cmsoms.cern.ch/agg/api/v1"
TOKEN_URL = "https://auth.cern.ch/auth/realms/cern/api-access/token"
LOGIN_URL = ("https://auth.cern.ch/auth/realms/cern/protocol/openid-connect/auth"
             "?client_id=cmsoms-prod&response_type=code&scope=openid")
AUDIENCE = "cmsoms-prod"
CLIENT_ID = "ecal-automation"
CLIENT_SECRET = "oms-Secret-9f3b"
#: the first token issued; later ones extend it (the suite's leak guard looks for it)
ACCESS_TOKEN = "eyJhbGciOi.access-Token-7c1d"
#: records per page OMS gives at most, whatever page[limit] asks
PAGE_CAP = 1000

_FILTER = re.compile(r"filter\[(\w+)\]\[(EQ|NEQ|LT|GT|LE|GE)\]")
_COMPARE = {"EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "LT": lambda a, b: a < b,
            "GT": lambda a, b: a > b, "LE": lambda a, b: a <= b, "GE": lambda a, b: a >= b}


def oms_run(number, fill, sequence="GLOBAL-RUN", end="2022-07-21T12:00:00Z"):
    """A run as OMS v1 returns it (a subset of the real attributes; no era)."""
    return {"run_number": number, "fill_number": fill, "sequence": sequence,
            "start_time": "2022-07-21T10:00:00Z", "end_time": end,
            "stable_beam": sequence == "GLOBAL-RUN", "last_lumisection_number": 321,
            "recorded_lumi": 45.6, "b_field": 3.8, "l1_menu": "L1Menu_Collisions2022_v1_3_0",
            "hlt_key": "/cdaq/physics/Run2022/2e34/v1.3.0/HLT/V2", "components": ["ECAL", "HCAL"]}


RUNS = [oms_run(355862, 7966), oms_run(355863, 7966, "LOCAL-RUN"), oms_run(355870, 7967),
        oms_run(355872, 7967), oms_run(357538, 8118), oms_run(357540, 8118, end=None)]
ERAS = [{"name": "Run2022D", "start_fill": 8118, "end_fill": 8151, "start_run": 357538,
         "end_run": 357900, "start_time": "2022-08-01T00:00:00Z", "end_time": None},
        {"name": "Run2022C", "start_fill": 7966, "end_fill": 8116, "start_run": 355862,
         "end_run": 357482, "start_time": "2022-07-21T00:00:00Z", "end_time": None},
        {"name": "Run2022H", "start_fill": 8500, "end_fill": 8500, "start_run": 362800,
         "end_run": 362801, "start_time": "2022-11-28T00:00:00Z", "end_time": None}]
#: 8118's stable beams are over but the fill goes on: its runs may still come
FILLS = [{"fill_number": 7966, "start_time": "2022-07-21T09:00:00Z",
          "end_time": "2022-07-21T23:10:00Z", "stable_beams": True,
          "start_stable_beam": "2022-07-21T11:30:00Z", "end_stable_beam": "2022-07-21T23:05:00Z"},
         {"fill_number": 8118, "start_time": "2022-08-01T08:00:00Z", "end_time": None,
          "stable_beams": True, "start_stable_beam": "2022-08-01T10:00:00Z",
          "end_stable_beam": "2022-08-01T22:00:00Z"}]
#: the attributes each resource's meta lists (a subset of the real ones)
META = {"runs": [*RUNS[0], "delivered_lumi", "energy", "fill_type_runtime", "duration"],
        "eras": list(ERAS[0]), "fills": [*FILLS[0], "fill_type_runtime", "peak_lumi"]}
ID_OF = {"runs": "run_number", "eras": "name", "fills": "fill_number"}


class Sent(NamedTuple):
    """One request the fake received, as sent."""

    method: str
    url: str
    headers: dict
    body: str


class OmsFake:
    """CERN SSO's API-access token endpoint and a CMS OMS instance, as they answer."""

    def __init__(self, mock: responses.RequestsMock, base_url: str = OMS_URL,
                 token_url: str = TOKEN_URL, audience: str = AUDIENCE):
        self.base_url, self.token_url, self.audience = base_url, token_url, audience
        self.resources = {"runs": list(RUNS), "eras": list(ERAS), "fills": list(FILLS)}
        self.meta = {name: list(fields) for name, fields in META.items()}
        self.page_cap = PAGE_CAP
        #: token -> audience of every token issued and not expired
        self.tokens: dict[str, str] = {}
        self.expired: set[str] = set()
        self.tokens_issued = 0
        self._failures: dict[str, list] = {}
        self.requests: list[Sent] = []
        mock.add_callback(responses.POST, token_url, callback=self._token)
        mock.add_callback(responses.GET, re.compile(re.escape(base_url) + r"/.*"),
                          callback=self._resource)
        self.mock = mock

    # --- what a test does to the servers ----------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far expires: OMS answers 401 to them."""
        self.expired |= set(self.tokens)
        self.tokens.clear()

    def fail(self, resource: str, status: int, body: dict | str | None = None,
             times: int | None = 1) -> None:
        """The next ``times`` queries of ``resource`` (not its meta) answer ``status``
        with ``body`` (JSON if a dict); None: forever."""
        self._failures[resource] = [status, body, times]

    def queries(self, name: str = "runs") -> list[list[tuple[str, str]]]:
        """Query parameters of every GET of resource ``name`` (not its meta)."""
        return [parse_qsl(urlsplit(sent.url).query) for sent in self.requests
                if sent.method == "GET" and urlsplit(sent.url).path.endswith("/" + name)]

    # --- the HTTP side -----------------------------------------------------------------

    def _keep(self, request) -> None:
        body = request.body or ""
        body = body.decode() if isinstance(body, bytes) else body
        self.requests.append(Sent(request.method, request.url, dict(request.headers), body))

    def _token(self, request):
        self._keep(request)
        form = dict(parse_qsl(request.body))
        if form.get("grant_type") != "client_credentials" or \
                (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {}, json.dumps({"error": "unauthorized_client",
                                        "error_description": "Invalid client credentials"})
        if not form.get("audience"):
            return 400, {}, json.dumps({"error": "invalid_request",
                                        "error_description": "Missing audience"})
        self.tokens_issued += 1
        token = ACCESS_TOKEN + (f".{self.tokens_issued}" if self.tokens_issued > 1 else "")
        self.tokens[token] = form["audience"]
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"access_token": token, "expires_in": 1200, "token_type": "Bearer",
             "not-before-policy": 0, "scope": "profile email"})

    def _resource(self, request):
        self._keep(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.expired:
            return 401, {"Content-Type": "application/json"}, json.dumps(
                {"errors": [{"status": "401", "title": "Unauthorized",
                             "detail": "Token expired"}]})
        if self.tokens.get(token) != self.audience:    # OMS' front end: to the login page
            return 302, {"Location": LOGIN_URL, "Content-Type": "text/html"}, \
                "<html><body>Redirecting to CERN Single Sign-On</body></html>"
        url = urlsplit(request.url)
        path = url.path[len(urlsplit(self.base_url).path):].strip("/")
        name, _, meta = path.partition("/")
        if name not in self.resources or meta not in ("", "meta"):
            return 404, {"Content-Type": "application/json"}, json.dumps(
                {"errors": [{"status": "404", "title": "Not Found"}]})
        failure = self._failures.get(name)
        if failure and not meta and failure[2] != 0:
            if failure[2] is not None:
                failure[2] -= 1
            status, body = failure[:2]
            return status, {}, json.dumps(body) if isinstance(body, dict) else (body or "")
        if meta:
            return 200, {"Content-Type": "application/json"}, json.dumps(
                {"meta": {"fields": {field: {"type": "STRING", "searchable": True,
                                             "sortable": True} for field in self.meta[name]}}})
        return 200, {"Content-Type": "application/json"}, json.dumps(
            self._page(name, parse_qsl(url.query)))

    def _page(self, name: str, params: list[tuple[str, str]]) -> dict:
        records = list(self.resources[name])
        for key, value in params:
            if match := _FILTER.fullmatch(key):
                attr, op = match.groups()
                records = [r for r in records if r.get(attr) is not None and
                           _COMPARE[op](r[attr], type(r[attr])(value))]
        query = dict(params)
        for key in reversed(query.get("sort", "").split(",")):
            if key:
                records.sort(key=lambda r: r[key.lstrip("-")], reverse=key.startswith("-"))
        offset = int(query.get("page[offset]", 0))
        limit = min(int(query.get("page[limit]", 10)), self.page_cap)
        page = records[offset:offset + limit]
        following = dict(query, **{"page[offset]": offset + limit})
        links = {"self": f"{self.base_url}/{name}?{urlencode(query)}", "prev": None,
                 "next": (f"{self.base_url}/{name}?{urlencode(following)}"
                          if offset + limit < len(records) else None)}
        body = {"data": [{"id": str(r[ID_OF[name]]), "type": name, "attributes": r,
                          "links": {}} for r in page], "links": links}
        if "meta" in query.get("include", "").split(","):
            body["meta"] = {"totalResourceCount": len(records)}
        return body


@pytest.fixture
def oms():
    """An :class:`OmsFake` at the production URLs (other requests pass through)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(re.compile(r"^http://(127\.0\.0\.1|localhost)"))
        yield OmsFake(mock)
