"""The workflow catalogue: the shipped file, defaults, JSON round trip, and every refusal."""

import json
import textwrap

import pytest

from ecaljenkins.errors import ConfigError, InputError, ScmError
from ecaljenkins.names import as_int, closest, did_you_mean, parse_int
from ecaljenkins.workflows import (DEFAULT_CATALOGUE, Scm, Workflow, load_catalogue,
                                   relative_script)

from fixtures.git import git


def write(tmp_path, text, name="workflows.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refusal(tmp_path, text) -> str:
    """The one-line message of loading a broken catalogue."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_catalogue(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert isinstance(err.value, InputError) and err.value.exit_code == 2
    return message


def test_shipped_catalogue_is_valid_and_realistic(monkeypatch):
    monkeypatch.delenv("ECAL_WORKFLOWS", raising=False)
    catalogue = load_catalogue()
    assert {"demo-reco", "demo-calib", "pi0-mon", "laser-mon", "phisym-reco", "phisym-calib",
            "ecalelf-ntuples", "timing-calib"} <= set(catalogue)
    assert catalogue["demo-calib"].depends_on == ("demo-reco",)
    assert catalogue["demo-reco"].command.startswith("python3 -m ecaljenkins.examples.demo_reco ")
    assert catalogue["demo-calib"].command.startswith("python3 -m ecaljenkins.examples.demo_calib ")
    assert catalogue["phisym-calib"].depends_on == ("phisym-reco",)
    assert catalogue["phisym-calib"].group_by == "fill"
    assert catalogue["timing-calib"].group_by == "era"
    assert all(task == wf.task for task, wf in catalogue.items())
    # multi-line shell with braces reaches the definition unchanged
    assert '"phisym_${RUN_NUMBER}.root"' in catalogue["phisym-reco"].command
    assert catalogue["phisym-reco"].command.count("\n") >= 4


def test_catalogue_path_precedence(tmp_path, monkeypatch):
    from_env = write(tmp_path, "env-task: {command: 'true'}\n", "env.yaml")
    explicit = write(tmp_path, "explicit-task: {command: 'true'}\n", "explicit.yaml")
    monkeypatch.setenv("ECAL_WORKFLOWS", str(from_env))
    assert list(load_catalogue()) == ["env-task"]
    assert list(load_catalogue(explicit)) == ["explicit-task"]
    monkeypatch.delenv("ECAL_WORKFLOWS")
    assert set(load_catalogue()) == set(load_catalogue(DEFAULT_CATALOGUE))


def test_defaults_and_types(tmp_path):
    catalogue = load_catalogue(write(tmp_path, """\
        minimal:
          command: echo hello
        full:
          command: "echo {a} '$b' \\"c\\""
          depends_on: [minimal]
          group_by: era
          max_retries: 0
          retry_delay: 2
          max_in_flight: 3
          node: "el9 && !gpu"
          timeout_minutes: 5
          description: Everything set.
        """))
    assert catalogue["minimal"] == Workflow("minimal", "echo hello")
    wf = catalogue["minimal"]
    assert (wf.depends_on, wf.group_by, wf.max_retries, wf.retry_delay, wf.max_in_flight,
            wf.node, wf.timeout_minutes, wf.description) == (
        (), "run", 2, 30.0, None, None, 120, "")
    full = catalogue["full"]
    assert full.command == "echo {a} '$b' \"c\""
    assert full.depends_on == ("minimal",) and full.group_by == "era"
    assert full.retry_delay == 2.0 and isinstance(full.retry_delay, float)
    assert (full.max_retries, full.max_in_flight, full.node, full.timeout_minutes) == (
        0, 3, "el9 && !gpu", 5)


def test_json_round_trip_is_canonical():
    wf = Workflow("phisym-calib", "a\n'b' {c} $d", depends_on=("phisym-reco",),
                  group_by="fill", max_in_flight=4, node="el9", description="x")
    text = wf.to_json()
    assert Workflow.from_json(text) == wf
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["depends_on"] == ["phisym-reco"] and data["task"] == "phisym-calib"
    assert " " not in text.replace("\n", "").split('"command":')[0]  # compact separators
    # equal definitions, whatever the way they were written, give equal text
    assert Workflow("t", "c", retry_delay=30, depends_on=["a"]).to_json() == \
        Workflow("t", "c", retry_delay=30.0, depends_on=("a",)).to_json()


@pytest.mark.parametrize("text, fragment", [
    ("not json", "not valid JSON"),
    ('{"command": "x"}', "no 'task'"),
    ('["task"]', "no 'task'"),
    ('{"task": "t", "command": "x", "colour": 1}', "unknown key 'colour'"),
    ('{"task": "t", "command": "x", "max_retries": -1}', "'max_retries'"),
])
def test_from_json_refuses_bad_definitions(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Workflow.from_json(text)


def test_retry_wait_doubles():
    wf = Workflow("t", "true", retry_delay=30)
    assert [wf.retry_wait(a) for a in (0, 1, 2, 3, 4)] == [0.0, 30.0, 60.0, 120.0, 240.0]
    assert Workflow("t", "true", retry_delay=0).retry_wait(5) == 0.0


def test_closest():
    assert closest("phisym-rec", ["phisym-reco", "pi0-mon"]) == "phisym-reco"
    assert closest("zzz", ["phisym-reco", "pi0-mon"]) is None
    assert closest("x", []) is None


def test_closest_ignoring_case_returns_the_known_spelling():
    assert closest("RUN2022C", ["Run2022B", "Run2022C"], ignore_case=True) == "Run2022C"
    assert closest("RUN2022C", ["Run2022B", "Run2022C", "RUN2022B"]) == "RUN2022B"


@pytest.mark.parametrize("value, number", [
    (355100, 355100), ("355100", 355100), (" 42 ", 42), ("-3", -3), ("+7", 7),
    (True, None), ("3551\u00b2", None), ("1_000", None), ("3.5e5", None), ("", None),
    ("355100 355113", None), (3.0, None), (None, None)])
def test_as_int_reads_ascii_decimal_integers_only(value, number):
    assert as_int(value) == number


def test_parse_int_names_what_and_the_bounds():
    assert parse_int("12", "build number", 1) == 12
    with pytest.raises(InputError, match=r"^invalid build number '0': expected a positive "
                                         r"integer$"):
        parse_int("0", "build number", 1)
    with pytest.raises(InputError, match=r"^invalid run number 1000000000: expected a "
                                         r"positive integer up to 999999999$"):
        parse_int(10**9, "run number", 1, 10**9 - 1)
    with pytest.raises(InputError, match=r"^invalid n 'x': expected an integer$"):
        parse_int("x", "n")


def test_did_you_mean_is_one_wording_or_nothing():
    assert did_you_mean("phisym-rec", {"phisym-reco", "pi0-mon"}) == " (did you mean 'phisym-reco'?)"
    assert did_you_mean("zzz", ["phisym-reco"]) == ""


@pytest.mark.parametrize("text, fragments", [
    # unknown and missing keys
    ("a:\n  command: x\n  max_retry: 3\n", ["workflow 'a'", "unknown key 'max_retry'",
                                            "did you mean 'max_retries'"]),
    ("a:\n  depends_on: []\n", ["workflow 'a'", "'command' is required"]),
    # wrong types and ranges
    ("a:\n  command: 42\n", ["workflow 'a'", "'command'", "must be a string"]),
    ("a:\n  command: '   '\n", ["'command'", "must not be empty"]),
    ("a:\n  command: x\n  max_retries: -1\n", ["'max_retries'", ">= 0", "-1"]),
    ("a:\n  command: x\n  max_retries: true\n", ["'max_retries'", "integer"]),
    ("a:\n  command: x\n  max_retries: 1.5\n", ["'max_retries'", "integer"]),
    ("a:\n  command: x\n  retry_delay: soon\n", ["'retry_delay'", "number", "'soon'"]),
    ("a:\n  command: x\n  retry_delay: -2\n", ["'retry_delay'", ">= 0"]),
    ("a:\n  command: x\n  retry_delay: .nan\n", ["'retry_delay'"]),
    ("a:\n  command: x\n  max_in_flight: 0\n", ["'max_in_flight'", ">= 1 or null"]),
    ("a:\n  command: x\n  group_by: lumi\n", ["'group_by'", "run, fill, era", "'lumi'"]),
    ("a:\n  command: x\n  node: 5\n", ["'node'", "string or null"]),
    ("a:\n  command: x\n  node: ''\n", ["'node'", "empty"]),
    ("a:\n  command: x\n  timeout_minutes: 0\n", ["'timeout_minutes'", ">= 1"]),
    ("a:\n  command: x\n  description: [x]\n", ["'description'", "string"]),
    ("a:\n  command: x\n  depends_on: b\n", ["'depends_on'", "list of task names"]),
    ("a:\n  command: x\n  depends_on: [b, b]\n", ["'depends_on'", "twice"]),
    ("a: echo hi\n", ["workflow 'a'", "must be a mapping"]),
    # characters XML (hence Jenkins) cannot carry
    ('a:\n  command: "echo \\x01"\n', ["'command'", "control characters"]),
    ('a:\n  command: "echo\\r\\nok"\n', ["'command'", "control characters"]),
    ('a:\n  command: x\n  description: "\\0"\n', ["'description'", "control characters"]),
    # names
    ("'bad name':\n  command: x\n", ["invalid task name 'bad name'"]),
    ("'-dash':\n  command: x\n", ["invalid task name '-dash'"]),
    ("'a{b}':\n  command: x\n", ["invalid task name 'a{b}'"]),
    ("12:\n  command: x\n", ["invalid task name 12"]),
    ("a:\n  command: x\n  depends_on: ['$(rm)']\n", ["workflow 'a'", "'depends_on'",
                                                     "invalid task name"]),
    # dependencies
    ("phisym-calib:\n  command: x\n  depends_on: [phisym-rec]\n"
     "phisym-reco:\n  command: x\n",
     ["workflow 'phisym-calib'", "'depends_on'", "unknown task 'phisym-rec'",
      "did you mean 'phisym-reco'"]),
    ("a:\n  command: x\n  depends_on: [b]\nb:\n  command: x\n  depends_on: [c]\n"
     "c:\n  command: x\n  depends_on: [a]\n", ["dependency cycle a -> b -> c -> a"]),
    ("a:\n  command: x\n  depends_on: [a]\n", ["dependency cycle a -> a"]),
    # the file itself
    ("a:\n  command: x\n b: [\n", ["invalid YAML"]),
    ("- a\n- b\n", ["must be a mapping", "not list"]),
    ("just text\n", ["must be a mapping", "not str"]),
    ("", ["must be a mapping", "not NoneType"]),
    ("{}\n", ["defines no workflow"]),
    ("a:\n  command: x\nb:\n  command: y\na:\n  command: z\n", [":5:", "duplicate key 'a'"]),
])
def test_refusals_name_file_workflow_and_key(tmp_path, text, fragments):
    message = refusal(tmp_path, text)
    for fragment in fragments:
        assert fragment in message, message


def test_yaml_syntax_error_gives_the_line(tmp_path):
    message = refusal(tmp_path, """\
        a:
          command: echo ok
        b:
          command: "unterminated
        """)
    assert ":4:" in message or ":5:" in message, message
    message = refusal(tmp_path, "a:\n  command: x\n\tb: 1\n")
    assert ":3:" in message, message


def test_missing_and_unreadable_catalogue(tmp_path, monkeypatch):
    monkeypatch.delenv("ECAL_WORKFLOWS", raising=False)
    with pytest.raises(ConfigError, match=r"nowhere\.yaml not found .*ECAL_WORKFLOWS"):
        load_catalogue(tmp_path / "nowhere.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"a:\n  command: caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_catalogue(tmp_path / "latin1.yaml")


def test_workflow_validates_itself():
    """Definitions built in code (or read back from InfluxDB) obey the same rules."""
    with pytest.raises(ConfigError, match="'group_by'"):
        Workflow("t", "x", group_by="lumi")
    with pytest.raises(ConfigError, match="invalid task name"):
        Workflow("t;rm", "x")
    with pytest.raises(ConfigError, match="'command'"):
        Workflow("t", "a\x00b")


# --- the workflow's code: scm, or installed executables -----------------------------

def test_scm_key(tmp_path):
    catalogue = load_catalogue(write(tmp_path, """\
        reco:
          command: python3 scripts/reco.py --runs "$RUN_NUMBER"
          scm:
            url: https://gitlab.cern.ch/ecal/reco.git
            branch: main
            credentials: gitlab-ecal-ro
            subdir: workflows/reco
        calib:
          command: ./calib.sh
          scm: {url: "git@gitlab.cern.ch:ecal/calib.git", tag: v2.1}
        """))
    scm = catalogue["reco"].scm
    assert scm == Scm("https://gitlab.cern.ch/ecal/reco.git", branch="main",
                      credentials="gitlab-ecal-ro", subdir="workflows/reco")
    assert scm.ref == "refs/heads/main" and catalogue["calib"].scm.ref == "refs/tags/v2.1"
    # recorded in InfluxDB as JSON and read back the same
    assert Workflow.from_json(catalogue["reco"].to_json()) == catalogue["reco"]


@pytest.mark.parametrize("command, script", [
    ("python3 examples/demo_reco.py --runs 1", "examples/demo_reco.py"),
    ("./run.sh", "./run.sh"),
    ("bash run.sh", "run.sh"),
    ("set -e\nX=1 scripts/a.sh \"$RUNS\"", "scripts/a.sh"),
    ("cd /tmp && python reco.py", "reco.py"),
])
def test_relative_script_without_scm_is_refused(tmp_path, command, script):
    message = refusal(tmp_path, f"reco:\n  command: {json.dumps(command)}\n")
    assert f"workflow 'reco': key 'command' runs the relative path {script!r}" in message
    assert "give 'scm'" in message
    # the same command is fine when the repository holding it is checked out
    load_catalogue(write(tmp_path, f"reco:\n  command: {json.dumps(command)}\n"
                         "  scm: {url: 'https://git.example/r.git', branch: main}\n"))


@pytest.mark.parametrize("command", [
    "python3 -m ecaljenkins.examples.demo_reco --runs \"$RUNS\"",
    "cmsRun \"$ECAL_CMSSW_BASE/src/a_cfg.py\" run=1",
    "source /cvmfs/cms.cern.ch/cmsset_default.sh && /opt/ecal/bin/reco.sh",
    "echo \"$RUNS\" | tr ',' '\\n' | sed 's|.*|root://eos/x/&.root|' > inputs.txt",
    "python3 -c 'print(1)'", "ecal-reco --runs \"$RUNS\"", "xrdcp -f a.root root://eos//x/",
])
def test_installed_or_absolute_commands_need_no_scm(command):
    assert relative_script(command) is None
    Workflow("t", command)


@pytest.mark.parametrize("scm, fragment", [
    ("{branch: main}", "'url' is required"),
    ("{url: 'https://git.example/r.git'}", "exactly one of 'branch' and 'tag'"),
    ("{url: 'https://git.example/r.git', branch: a, tag: b}", "exactly one of"),
    ("{url: 'https://bob:s3cret@git.example/r.git', branch: a}", "must not hold a user"),
    ("{url: 'https://bob@git.example/r.git', branch: a}", "must not hold a user"),
    ("{url: 'r.git', branch: main}", "must be a git URL"),
    ("{url: 'https://git.example/r.git', branch: '-x'}", "branch or tag name"),
    ("{url: 'https://git.example/r.git', branch: 'a..b'}", "branch or tag name"),
    ("{url: 'https://git.example/r.git', branch: m, subdir: '../up'}", "without '..'"),
    ("{url: 'https://git.example/r.git', branch: m, subdir: '/abs'}", "relative directory"),
    ("{url: 'https://git.example/r.git', branch: m, commit: 'abc'}", "40 hex"),
    ("{url: 'https://git.example/r.git', branch: m, credentials: 'a b'}", "credentials id"),
    ("{url: 'https://git.example/r.git', brach: m}", "(did you mean 'branch'?)"),
    ("https://git.example/r.git", "must be a mapping"),
])
def test_scm_refusals(tmp_path, scm, fragment):
    message = refusal(tmp_path, f"reco:\n  command: ./run.sh\n  scm: {scm}\n")
    assert "workflow 'reco': key 'scm'" in message and fragment in message
    assert "s3cret" not in message


def test_pinned_resolves_the_branch_or_tag_with_ls_remote(git_remote):
    url, repo, first, second = git_remote
    wf = Workflow("reco", "./run.sh", scm={"url": url, "branch": "main"})
    pinned = wf.pinned()
    assert pinned.scm.commit == second and pinned.scm.branch == "main"
    assert pinned.pinned() is pinned                 # pinned once, never moved again
    git("commit", "-q", "--allow-empty", "-m", "three", cwd=repo)
    assert Workflow.from_json(pinned.to_json()).scm.commit == second
    tag = Workflow("reco", "./run.sh", scm={"url": url, "tag": "v1"}).pinned()
    assert tag.scm.commit == first                   # the commit of the annotated tag
    assert Workflow("t", "true").pinned().scm is None


def test_pinned_refusals(git_remote, tmp_path):
    url = git_remote.url
    with pytest.raises(ConfigError, match="workflow 'reco': key 'scm': branch 'nope' not found"):
        Workflow("reco", "./run.sh", scm={"url": url, "branch": "nope"}).pinned()
    with pytest.raises(ScmError, match="git ls-remote file://.*/missing failed") as err:
        Workflow("reco", "./run.sh", scm={"url": f"file://{tmp_path}/missing",
                                          "branch": "main"}).pinned()
    assert err.value.exit_code == 1 and "\n" not in str(err.value)
