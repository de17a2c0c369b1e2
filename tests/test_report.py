"""The HTML report, read back with the standard library's HTML parser."""

import os
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from influxdb_client import Point

from ecaljenkins.campaign import RunCtrl
from ecaljenkins.registry import Run, open_registry
from ecaljenkins.report import render_report, write_report
from ecaljenkins.schema import STATUSES
from ecaljenkins.status import campaign_status

ERAS = ("Run2022G", "Run2022D")
URL = "https://cmsjenkins.cern.ch/job/ecal-db-c1-{task}/{build}/"
TOGGLE = "function toggle(s,o){document.querySelectorAll(s).forEach(function(d){d.open=o})}"


class Page(HTMLParser):
    """What a reader sees: the grid cells by (run, task), groups, tables, every tag."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags = Counter()
        self.attributes = []          # (tag, name, value) of every attribute
        self.tasks = []               # column headers of the grid
        self.cells = {}               # (run, task) -> {"class", "title", "href"}
        self.groups = []              # [era summary, [fill summaries]]
        self.group_of = {}            # run -> (era summary, fill summary)
        self.lists = []               # rows (lists of cell texts) of each table.list
        self.scripts = []
        self._row = self._cell = self._text = None
        self._in = None               # 'list', 'grid', 'head', 'summary', 'script', 'th'
        self._details, self._divs = [], []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        attrs = dict(attrs)
        self.attributes += [(tag, name, value) for name, value in attrs.items()]
        cls = attrs.get("class") or ""
        if tag == "div":
            self._divs.append(cls)
            if cls == "head":
                self._in = "head"
        elif tag == "table":
            if self._in != "head":
                self._in = "list" if cls == "list" else "grid"
            if self._in == "list":
                self.lists.append([])
        elif tag == "details":
            self._details.append(cls)
        elif tag == "summary":
            self._text = []
        elif tag == "script":
            self._text = []
        elif tag == "tr" and self._in == "list":
            self.lists[-1].append([])
        elif tag in ("td", "th") and self._in == "list":
            self.lists[-1][-1].append("")
        elif tag == "th" and self._in == "head" and "t" in cls.split():
            self.tasks.append(attrs["title"])
        elif tag == "th" and self._in == "grid":
            self._text = []
        elif tag == "td" and self._in == "grid":
            self._flush_run()
            task = self.tasks[len([k for k in self.cells if k[0] == self._row])]
            self._cell = self.cells[(self._row, task)] = {
                "class": attrs.get("class"), "title": attrs.get("title"), "href": None}
        elif tag == "a" and self._in == "grid":
            self._cell["href"] = attrs["href"]

    def _flush_run(self):
        if self._text is not None and self._in == "grid":
            self._row = int("".join(self._text))
            self.group_of[self._row] = (self.groups[-1][0], self.groups[-1][1][-1])
            self._text = None

    def handle_endtag(self, tag):
        if tag == "summary":
            text = " ".join("".join(self._text).split())
            if self._details[-1] == "era":
                self.groups.append([text, []])
            else:
                self.groups[-1][1].append(text)
            self._text = None
        elif tag == "script":
            self.scripts.append("".join(self._text))
            self._text = None
        elif tag == "details":
            self._details.pop()
        elif tag == "div" and self._divs.pop() == "head":
            self._in = None
        elif tag == "table" and self._in in ("list", "grid"):
            self._in = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)
        elif self._in == "list" and self.lists[-1] and self.lists[-1][-1]:
            self.lists[-1][-1][-1] += data

    def table(self, first_header: str) -> list[list[str]]:
        """The rows of the table.list whose first header cell is ``first_header``."""
        rows = next(rows for rows in self.lists if rows[0][0] == first_header)
        return [[" ".join(cell.split()) for cell in row] for row in rows]


def make_runs(count: int, per_fill: int = 10, per_era: int = 500, era_name=None) -> list[Run]:
    return [Run.from_attrs({"run_number": 300000 + i, "fill_number": 7000 + i // per_fill,
                            "era": era_name or f"Run2022{'BCDEFG'[i // per_era]}",
                            "sequence": "GLOBAL-RUN", "start_time": "2022-07-05T16:08:30Z",
                            "end_time": "2022-07-05T18:08:30Z"}) for i in range(count)]


@pytest.fixture
def ctrl(client):
    """Campaign c1 over two eras: t1, t2 on global runs, t3 on the others, builds in
    every state; t1's failures link to Jenkins, t2's to an absolute and a relative log."""
    ctrl = RunCtrl(client, "c1")
    ctrl.create()
    ctrl.update_rtype("all", add=["t1", "t2"])
    ctrl.create_rtype("cosmics", ["sequence != GLOBAL-RUN"], ["t3"])
    runs = [r for era in ERAS for r in open_registry().era(era)]
    ctrl.inject(runs)
    glob = sorted(r.number for r in runs if r.sequence == "GLOBAL-RUN")
    for i, run in enumerate(glob[:10]):
        ctrl.set_status("t1", [run], "done", url=URL.format(task="t1", build=i + 1), build=i + 1)
    ctrl.set_status("t1", glob[10:12], "failed", attempt=3, reason="exit code 65",
                    url=URL.format(task="t1", build=99), build=99)
    ctrl.set_status("t1", glob[12:13], "running", url=URL.format(task="t1", build=100))
    ctrl.set_status("t1", glob[13:15], "queued")
    ctrl.set_status("t2", glob[:1], "failed", attempt=1, reason="no input\nfile",
                    log="/eos/ecal/logs/t2 run.log")
    ctrl.set_status("t2", glob[1:2], "done", log="logs/db/c1/t2/1.log")
    return ctrl


def test_grid_has_every_run_and_task_coloured_linked_and_titled(ctrl):
    page = Page(render_report(ctrl))
    assert page.tasks == ["t1", "t2", "t3"]
    rows = {r.run: r for r in ctrl.runs()}
    assert sorted({run for run, _ in page.cells}) == sorted(rows)
    for (run, task), cell in page.cells.items():
        status = rows[run].tasks.get(task)
        assert cell["class"] == (f"s-{status}" if status else None), (run, task)
    glob = sorted(run for run, row in rows.items() if "t1" in row.tasks)
    assert page.cells[(glob[3], "t1")] == {"class": "s-done", "title": None,
                                           "href": URL.format(task="t1", build=4)}
    assert page.cells[(glob[10], "t1")] == {"class": "s-failed",
                                            "title": "attempt 3: exit code 65",
                                            "href": URL.format(task="t1", build=99)}
    assert page.cells[(glob[12], "t1")]["href"] == URL.format(task="t1", build=100)
    assert page.cells[(glob[13], "t1")] == {"class": "s-queued", "title": None, "href": None}
    assert page.cells[(glob[0], "t2")] == {"class": "s-failed",
                                           "title": "attempt 1: no input file",
                                           "href": "file:///eos/ecal/logs/t2%20run.log"}
    assert page.cells[(glob[1], "t2")]["href"] == "logs/db/c1/t2/1.log"
    assert page.cells[(glob[2], "t2")] == {"class": "s-new", "title": None, "href": None}


def test_runs_are_grouped_by_era_then_fill(ctrl):
    page = Page(render_report(ctrl))
    registry = open_registry()
    assert [era.split(" · ")[0] for era, _ in page.groups] == ["Run2022D", "Run2022G"]
    for run in registry.runs([run for run, _ in page.cells]):
        era, fill = page.group_of[run.number]
        assert era.startswith(f"{run.era} · ") and fill.startswith(f"fill {run.fill} · ")
    runs_d = registry.era("Run2022D")
    era_d, fills_d = page.groups[0]
    assert era_d.startswith(f"Run2022D · {len(runs_d)} runs · ")
    assert len(fills_d) == len({r.fill for r in runs_d})
    # the failures are in Run2022D's first global runs: its summary says how many
    assert era_d.endswith(" · 3 failed")
    assert page.tags["details"] == len(page.groups) + sum(len(f) for _, f in page.groups)


def test_summary_counts_progress_and_failures(ctrl):
    page = Page(render_report(ctrl))
    doc = campaign_status(ctrl)
    progress = page.table("task")
    assert progress[0] == ["task", *STATUSES, "total", "progress"]
    counted = {row[0]: {s: int(n) for s, n in zip(STATUSES, row[1:6]) if n != "0"}
               for row in progress[1:]}
    assert counted == doc["tasks"]
    t1 = next(row for row in progress if row[0] == "t1")
    total = sum(doc["tasks"]["t1"].values())
    assert t1[6:] == [str(total), "", f"10/{total} ({round(100 * 10 / total, 1)}%)"]
    failures = page.table("run")
    assert [row[:3] for row in failures[1:]] == [[str(f["run"]), f["task"], str(f["attempt"])]
                                                for f in doc["failures"]]
    assert page.table("run type")[1:] == [["all", "sequence == GLOBAL-RUN", "t1, t2",
                                           str(doc["rtypes"]["all"]["runs"])],
                                          ["cosmics", "sequence != GLOBAL-RUN", "t3",
                                           str(doc["rtypes"]["cosmics"]["runs"])]]


def test_hostile_values_are_escaped_and_never_linked_as_script(ctrl, client):
    evil = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    hostile = RunCtrl(client, "evil")
    hostile.create(description=evil)
    hostile.update_rtype("all", add=["t1", "t2", "t3"])
    hostile.inject(make_runs(3, era_name="<b>Run2022X</b>"))
    hostile.set_status("t1", [300000], "failed", reason=evil, url="javascript:alert(3)",
                       log=" JavaScript:alert(4)")
    hostile.set_status("t2", [300000], "failed", reason=evil, url=f"https://x/{evil}")
    # a status nobody should write, written straight into the database
    client.write([Point("run").tag("campaign", "evil").tag("task", "t3")
                  .field("status", "x onmouseover=alert(5)").time(300001)])
    html = render_report(hostile)
    page = Page(html)
    assert set(page.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                              "strong", "table", "tr", "th", "td", "span", "a", "div",
                              "details", "summary", "button", "script"}
    assert page.scripts == [TOGGLE]
    handlers = [(tag, name) for tag, name, _ in page.attributes if name.startswith("on")]
    assert handlers == [("button", "onclick")] * 3
    hrefs = [value for _, name, value in page.attributes if name == "href"]
    assert {urlsplit(h).scheme for h in hrefs} == {"", "https"}  # relative, or the web
    assert page.cells[(300000, "t1")] == {"class": "s-failed", "title": f"{evil}",
                                          "href": "%20JavaScript%3Aalert%284%29"}
    assert page.cells[(300000, "t2")]["href"] == f"https://x/{evil}"  # inert once escaped
    assert page.cells[(300001, "t3")] == {"class": "s-other", "title": None, "href": None}
    assert page.groups[0][0].startswith("<b>Run2022X</b> · 3 runs")  # shown as text
    assert evil not in html and "<b>Run2022X" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_a_static_page_without_external_assets(ctrl):
    html = render_report(ctrl)
    page = Page(html)
    assert page.tags["link"] == page.tags["img"] == page.tags["iframe"] == 0
    assert not [a for a in page.attributes if a[1] == "src"]
    style = html[html.index("<style>"):html.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert page.tags["script"] == 1 and page.scripts == [TOGGLE]


def test_large_campaign_stays_small_and_reads_a_constant_number_of_queries(client):
    def report(ctrl):
        before = client.stats["queries"]
        html = render_report(ctrl)
        return html, client.stats["queries"] - before

    tasks = ["pi0-mon", "phisym-reco", "phisym-calib", "ecalelf-ntuples", "laser-mon"]
    small = RunCtrl(client, "small")
    small.create()
    small.update_rtype("all", add=tasks)
    small.inject(make_runs(3))
    big = RunCtrl(client, "big")
    big.create()
    big.update_rtype("all", add=tasks)
    runs = make_runs(2000)
    big.inject(runs)
    numbers = [r.number for r in runs]
    for i, task in enumerate(tasks):
        job = f"https://cmsjenkins.cern.ch/job/ecal-ecal_rereco_v1-big-{task}/123456/"
        big.set_status(task, numbers[i::2], "done", url=job, build=123456, attempt=1)
        big.set_status(task, numbers[1 + i::40], "failed", url=job, build=123456, attempt=3,
                       reason="cmsRun exited with code 8001: exception in module "
                              "EcalUncalibRecHitProducer while processing event 1234567")
    html, queries = report(big)
    # configuration, runs, rows, jobs of tasks of many jobs
    assert queries == report(small)[1] == 4
    page = Page(html)
    assert len(page.cells) == 2000 * 5
    assert len(page.groups) == 4 and sum(len(fills) for _, fills in page.groups) == 200
    assert len(html.encode()) < 300 * len(page.cells)
    failed = [c for c in page.cells.values() if c["class"] == "s-failed"]
    assert len(failed) == sum(len(numbers[1 + i::40]) for i in range(5))


def test_cli_writes_the_report_atomically(run_cli, ctrl, tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    res = run_cli("ecalrunctrl.py", "report", "-c", "c1", "-o", str(target))
    assert res.code == 0 and res.err == "", res
    assert res.out == f"wrote the report of campaign 'c1' to {str(target)!r}\n"
    assert os.listdir(tmp_path) == ["report.html"]  # no temporary file left
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    page = Page(target.read_text())
    assert len(page.cells) == len(ctrl.runs()) * 3


def test_cli_read_only_user_can_write_a_report(run_cli, ctrl, reader_env, tmp_path):
    res = run_cli("ecalrunctrl.py", "report", "-c", "c1", "-o", str(tmp_path / "r.html"))
    assert res.code == 0, res
    assert (tmp_path / "r.html").stat().st_size > 0


@pytest.mark.parametrize("args,words", [
    (["-c", "nope", "-o", "{tmp}/r.html"], "campaign 'nope' does not exist"),
    (["-c", "c1", "-o", "{tmp}/missing/r.html"], "cannot write the report to"),
    (["-c", "c1", "-o", "{tmp}"], "cannot write the report to"),
    (["-c", "c1"], "the following arguments are required: -o/--output"),
])
def test_cli_bad_input(run_cli, ctrl, tmp_path, args, words):
    res = run_cli("ecalrunctrl.py", "report", *(a.format(tmp=tmp_path) for a in args))
    assert res.code == 2, res
    assert words in res.err and len(res.err.strip().splitlines()) == 1, res
    assert os.listdir(tmp_path) == []
