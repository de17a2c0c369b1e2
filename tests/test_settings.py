"""The settings: read once from the environment, checked when used, documented once."""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import ecaljenkins
from ecaljenkins.errors import ConfigError, InputError
from ecaljenkins.settings import BuildEnv, Settings, _var, variables

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(ecaljenkins.__file__).resolve().parent


def test_from_env_reads_every_variable_and_empty_is_unset():
    env = {names[0]: f"value-of-{field}" for field, names in variables().items()}
    settings = Settings.from_env(env)
    for field in variables():
        assert getattr(settings, field) == f"value-of-{field}"
    blank = Settings.from_env({name: "" for name in env})
    assert blank == Settings()
    assert blank.influxdb_url == "http://localhost:8086" and blank.influxdb_user is None


def test_secrets_stay_out_of_repr():
    settings = Settings(influxdb_password="pw-Secret-1", influxdb_token="tok-Secret-2",
                        oms_client_secret="oms-Secret-3", jenkins_api_token="jen-Secret-4",
                        influxdb_user="ecal")
    assert "Secret" not in repr(settings) and "ecal" in repr(settings)


@dataclass(frozen=True)
class Aliased(Settings):
    """A setting spelled two ways, as ECAL_INFLUXDB_PASSWORD and ECAL_INFLUXDB_PWD are."""

    extra: str | None = _var("ECAL_EXTRA", "ECAL_EXTRA_ALIAS", secret=True)


@pytest.mark.parametrize("env, value", [
    ({"ECAL_EXTRA": "a"}, "a"),
    ({"ECAL_EXTRA_ALIAS": "b"}, "b"),
    ({"ECAL_EXTRA": "c", "ECAL_EXTRA_ALIAS": "c"}, "c"),
    ({"ECAL_EXTRA": "", "ECAL_EXTRA_ALIAS": "d"}, "d"),
    ({}, None)])
def test_an_alias_is_read_like_its_name(env, value):
    assert Aliased.from_env(env).extra == value


def test_a_name_and_its_alias_set_differently_are_refused_without_the_values():
    with pytest.raises(ConfigError) as err:
        Aliased.from_env({"ECAL_EXTRA": "one-Secret", "ECAL_EXTRA_ALIAS": "two-Secret"})
    assert str(err.value) == ("ECAL_EXTRA and ECAL_EXTRA_ALIAS are both set, to different "
                              "values: unset one of them")


def test_ecal_influxdb_pwd_is_the_password_too():
    """The name of ecalautoctrl's documentation, beside ours; two values refused."""
    assert Settings.from_env({"ECAL_INFLUXDB_PWD": "p-Secret"}).influxdb_password == "p-Secret"
    assert Settings.from_env({"ECAL_INFLUXDB_PASSWORD": "q-Secret"}).influxdb_password == \
        "q-Secret"
    with pytest.raises(ConfigError, match="^ECAL_INFLUXDB_PASSWORD and ECAL_INFLUXDB_PWD are "
                                          "both set, to different values: unset one of them$"):
        Settings.from_env({"ECAL_INFLUXDB_PASSWORD": "a-Secret", "ECAL_INFLUXDB_PWD": "b-Secret"})


@pytest.mark.parametrize("text, seconds", [(None, None), ("", None), ("2.5", 2.5), ("1e3", 1000)])
def test_influxdb_timeout(text, seconds):
    assert Settings(influxdb_timeout=text).influxdb_timeout_seconds == seconds


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "-inf", "soon", "1e999"])
def test_bad_influxdb_timeout_is_refused_when_used_only(text):
    settings = Settings(influxdb_timeout=text)          # building it does not check
    with pytest.raises(ConfigError, match=re.escape(f"invalid ECAL_INFLUXDB_TIMEOUT {text!r}: "
                                                    "expected seconds > 0")):
        settings.influxdb_timeout_seconds


@pytest.mark.parametrize("text, seconds", [(None, 300.0), ("0", 0.0), ("12", 12.0)])
def test_report_retry(text, seconds):
    assert Settings(report_retry=text).report_retry_seconds == seconds


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "five"])
def test_bad_report_retry(text):
    with pytest.raises(ConfigError, match=re.escape(f"invalid ECAL_REPORT_RETRY {text!r}: "
                                                    "expected seconds >= 0")):
        Settings(report_retry=text).report_retry_seconds


def test_jenkins_account_is_checked_when_asked_for():
    assert not Settings().jenkins_configured
    with pytest.raises(ConfigError, match="^JENKINS_URL, JENKINS_USER, JENKINS_API_TOKEN not set"):
        Settings().jenkins_account()
    bad = Settings(jenkins_url="http://bot:pw-Secret@jenkins.example/", jenkins_user="bot",
                   jenkins_api_token="t")
    assert bad.jenkins_configured
    with pytest.raises(ConfigError, match="JENKINS_URL must be") as err:
        bad.jenkins_account()
    assert "Secret" not in str(err.value)
    good = Settings(jenkins_url="http://jenkins.example/", jenkins_user="bot",
                    jenkins_api_token="t")
    assert good.jenkins_account() == ("http://jenkins.example/", "bot", "t")


def test_oms_credentials():
    with pytest.raises(ConfigError, match="^ECAL_OMS_CLIENT_SECRET is not set"):
        Settings(oms_client_id="id").oms_credentials()
    assert Settings(oms_client_id="id", oms_client_secret="s").oms_credentials() == ("id", "s")


def test_build_env():
    env = BuildEnv.from_env({"BUILD_NUMBER": "7", "BUILD_URL": "http://j/7/", "DB": "d",
                             "CAMPAIGN": "c", "TASK": "t", "RUN_NUMBER": "355100",
                             "ECAL_BUILD_WRAPPER": "1"})
    assert (env.build_number, env.build_url, env.db, env.campaign, env.task) == \
        ("7", "http://j/7/", "d", "c", "t")
    assert env.wrapped and env.run_text == "355100"
    grouped = BuildEnv.from_env({"RUNS": "1,2", "RUN_NUMBER": "1", "ECAL_BUILD_WRAPPER": ""})
    assert grouped.run_text == "1,2" and not grouped.wrapped
    assert BuildEnv.from_env({}) == BuildEnv()


@pytest.mark.parametrize("text, build", [("7", 7), (" 12 ", 12), (None, None)])
def test_build_number(text, build):
    assert BuildEnv(build_number=text).build == build


@pytest.mark.parametrize("text", ["0", "-3", "x7", "7.0", "\u0667"])
def test_a_bad_build_number_is_bad_input_on_every_build_side_path(text):
    """The wrapper, jobctrl and the Handler read BUILD_NUMBER through this one property."""
    with pytest.raises(InputError, match="invalid build number"):
        BuildEnv(build_number=text).build


def _table(text: str) -> list[str]:
    """The rows of the markdown table of variables in ``text``."""
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith("| `") and ("ECAL_" in line or "JENKINS_" in line)]


def test_readme_table_is_the_docstring_table_and_names_every_variable():
    readme = _table((ROOT / "README.md").read_text(encoding="utf-8").split("## Configuration")[1]
                    .split("\n## ")[0])
    assert readme == _table(Settings.__doc__)
    documented = set(re.findall(r"`((?:ECAL|JENKINS)_[A-Z_]+)`", "\n".join(readme)))
    assert documented == {name for names in variables().values() for name in names}


# the variables read outside settings.py: the terminal convention of every program, and
# HTCondor's own CONDOR_CONFIG, which the private pool points at itself and restores
NOT_SETTINGS = {("cli/status.py", "NO_COLOR"), ("localcondor.py", "CONDOR_CONFIG")}


def test_no_module_but_settings_reads_the_environment():
    """The example workflows shipped with the package are left out: they are a
    workflow author's scripts, free to read their own variables (ECAL_DEMO_*)."""
    reads = set()
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(PACKAGE).as_posix()
        if where == "settings.py" or where.startswith("examples/"):
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(?:environ\.get|environ\[|getenv)\(?\s*[\"']?(\w*)", text):
            reads.add((where, match.group(1)))
    assert reads == NOT_SETTINGS
