"""Credentials never leak (argv, errors, --debug), and reading needs only READ.

The whole suite is also searched for the test credentials by fixtures/leaks.py (every
captured output, every subprocess output, every file written under the session's
temporary directory): a credential found anywhere fails the session.
"""

import argparse
import re
from pathlib import Path

import pytest

from ecaljenkins.cli import automation, runctrl
from ecaljenkins.cli.common import make_parser
from ecaljenkins.workflows import Workflow

from fixtures.influx import READER, WRITER, dump
from fixtures.leaks import SECRETS
from jenkins_fake import TOKEN
from scheduling import make_campaign, make_runs

ANCESTRY = ('p=$$; while [ "$p" -gt 1 ]; do tr "\\0" " " < /proc/$p/cmdline; echo; '
            'p=$(awk "{print \\$4}" /proc/$p/stat); done > {out}; '
            'env | cut -d= -f1 | sort > {out}.env')


def _secret_free(text: str) -> bool:
    return not any(secret in text for secret in SECRETS) and WRITER[1] not in text


def test_influxd_command_line_holds_no_password(influxd):
    cmdline = Path(f"/proc/{influxd.proc.pid}/cmdline").read_bytes().decode()
    assert "influxd" in cmdline and _secret_free(cmdline)
    assert influxd.admin_password not in cmdline


def test_local_builds_get_no_secret_in_their_command_lines(run_cli, db, client, tmp_path):
    """The scheduler, the wrapper and bash -c: their argv, read from /proc while running."""
    out = tmp_path / "ancestry.txt"
    make_campaign(client, "c1", [Workflow("a", ANCESTRY.replace("{out}", str(out)))],
                  make_runs(1))
    res = run_cli("ecalautomation.py", "--db", db, "schedule", "--executor", "local",
                  "--log-dir", str(tmp_path / "logs"), extra_env={"JENKINS_API_TOKEN": TOKEN})
    assert res.code == 0, res
    lines = out.read_text().splitlines()
    assert any("ecaljenkins.cli.automation" in line and " run " in line for line in lines)
    assert any("schedule --executor local" in line for line in lines)
    assert all(_secret_free(line) for line in lines), lines
    # the build gets the InfluxDB credentials by environment only, and no Jenkins token
    names = (tmp_path / "ancestry.txt.env").read_text().split()
    assert "ECAL_INFLUXDB_PASSWORD" in names and "JENKINS_API_TOKEN" not in names


@pytest.mark.parametrize("args, changes, code, words", [
    (["status", "-c", "c1"], {"ECAL_INFLUXDB_PASSWORD": "wrong-Secret-pw9"}, 1,
     "authentication failed for user 'writer'"),
    (["rtype-update", "-c", "c1", "--add", "x", "--allow-undefined"], {"ECAL_INFLUXDB_USER": READER[0],
                                                   "ECAL_INFLUXDB_PASSWORD": READER[1]}, 1,
     "user reader is not authorized to write"),
    (["status", "-c", "c1"], {"ECAL_INFLUXDB_URL": "@credentials-in-url"}, 2,
     "without user or password"),
    (["status", "-c", "c1"], {"ECAL_INFLUXDB_URL": "http://127.0.0.1:9"}, 1,
     "cannot reach InfluxDB"),
    (["status", "-c", "c1"], {"ECAL_INFLUXDB_TOKEN": "tok-Secret-x1"}, 1,
     "InfluxDB authentication failed"),
])
def test_errors_with_debug_hold_no_credential(run_cli, db, client, influxd, env, args, changes,
                                              code, words):
    make_campaign(client, "c1", [Workflow("a", "true")], make_runs(1))
    if changes.get("ECAL_INFLUXDB_URL") == "@credentials-in-url":
        changes = {"ECAL_INFLUXDB_URL": influxd.url.replace(
            "//", f"//{WRITER[0]}:{WRITER[1]}@")}
    before = dump(influxd, db)
    res = run_cli("ecalrunctrl.py", "--debug", *args, extra_env=changes)
    assert res.code == code and words in res.err, res
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert _secret_free(res.out + res.err) and "tok-Secret-x1" not in res.err
    assert dump(influxd, db) == before


def test_reading_commands_work_for_a_read_only_user(run_cli, db, client, influxd, tmp_path,
                                                    reader_env):
    ctrl = make_campaign(client, "c1", [Workflow("a", "true"),
                                        Workflow("b", "true", depends_on=("a",))],
                         make_runs(3))
    ctrl.set_status("a", [make_runs(1)[0].number], "failed", reason="exit code 1")
    before = dump(influxd, db)
    for args in (["status", "-c", "c1"], ["status", "-c", "c1", "--json"],
                 ["report", "-c", "c1", "-o", str(tmp_path / "r.html")],
                 ["runs", "-c", "c1", "--task", "a"], ["rtype-list", "-c", "c1"], ["list"]):
        res = run_cli("ecalrunctrl.py", *args)
        assert res.code == 0 and res.err == "", (args, res)
    res = run_cli("ecalautomation.py", "schedule", "--dry-run")
    assert res.code == 0 and "would trigger a run(s)" in res.out, res
    assert dump(influxd, db) == before
    # and writing is refused with the privilege named
    res = run_cli("ecalautomation.py", "schedule", extra_env={
        "JENKINS_URL": "http://127.0.0.1:9/", "JENKINS_USER": "u", "JENKINS_API_TOKEN": TOKEN})
    assert res.code == 1 and "not authorized to write" in res.err, res
    assert dump(influxd, db) == before


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """{sub-command: its parser} of both commands, as they register them."""
    found = {}
    for cli in (runctrl, automation):
        parser = make_parser(cli.__name__, cli.DESCRIPTION, cli.GROUPS)
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        found.update(action.choices)
    return found


def test_every_subcommand_is_walked():
    assert {"create", "inject", "report", "schedule", "jobctrl"} <= set(subcommands())


def test_readme_lists_the_privilege_of_every_command():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Privileges")[1].split("\n## ")[0]
    for command in [*subcommands(), "schedule --dry-run"]:
        assert f"| `{command}`" in table, command
    assert "READ" in table and "WRITE" in table


def test_no_subcommand_takes_a_credential_on_its_command_line():
    """Credentials come from the environment only: no option could put one in argv."""
    for name, parser in subcommands().items():
        for action in parser._actions:
            for option in action.option_strings:
                assert not re.search(r"password|passwd|token|secret|credential", option, re.I), \
                    (name, option)
