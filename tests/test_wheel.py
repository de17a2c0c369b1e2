"""Installed as a wheel, from a directory outside the checkout, the package works.

The wheel is built from a copy of what setup.cfg ships (the package, no
checkout around it) with ``pip wheel --no-deps``, as a release is, and installed
into a fresh venv. The dependencies come from this suite's venv through a
``.pth`` line, so nothing is downloaded; the test checks that ``ecaljenkins``
itself is imported from the fresh venv. From an empty directory the installed
commands then render jobs from the shipped templates and catalogue, write a
report and run the demo, whose example workflows ship in the package too.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import ecaljenkins
from fixtures.leaks import run_recorded

CHECKOUT = Path(__file__).resolve().parent.parent
#: what a wheel is built from: the package and the files setup.cfg reads
SOURCES = ("setup.cfg", "pyproject.toml", "README.md")
#: the packages the wheel ships
PACKAGES = ("ecaljenkins", "ecalautoctrl")
#: a warning class of setuptools or of the build backend (BuildBackendWarning,
#: SetuptoolsDeprecationWarning, ...): pip shows them even when quiet
BUILD_WARNING = re.compile(r"\b\w*Warning\b")


def build_wheel(source: Path, into: Path) -> tuple[Path, str]:
    """The wheel of ``source`` and what the build printed."""
    proc = run_recorded([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                         str(into), str(source)], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = list(into.glob("ecaljenkins-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], proc.stdout + proc.stderr


def copy_sources(target: Path) -> Path:
    for name in SOURCES:
        shutil.copy(CHECKOUT / name, target / name)
    for package in PACKAGES:
        shutil.copytree(CHECKOUT / package, target / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with the wheel installed; its dependencies are this venv's."""
    source = copy_sources(tmp_path_factory.mktemp("source"))
    wheel, output = build_wheel(source, tmp_path_factory.mktemp("wheel"))
    assert not BUILD_WARNING.findall(output), output
    root = tmp_path_factory.mktemp("venv")
    proc = run_recorded([sys.executable, "-m", "venv", "--without-pip", str(root)])
    assert proc.returncode == 0, proc.stderr
    proc = run_recorded([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"),
                         "install", "--no-deps", "--quiet", str(wheel)], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = Path(run_recorded([root / "bin" / "python", "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             check=True).stdout.strip())
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (site / "suite-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return root, wheel


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """An empty working directory outside the checkout, and an environment without the
    variables that would point the commands back into it."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    for key in ("PYTHONPATH", "ECAL_TEMPLATES", "ECAL_WORKFLOWS"):
        monkeypatch.delenv(key, raising=False)
    return work


def run_in(venv, work: Path, command: str, *args, timeout=120):
    root, _ = venv
    return run_recorded([root / "bin" / command, *args], cwd=work, env=dict(os.environ),
                        timeout=timeout)


def test_the_wheel_carries_its_resources_and_is_what_runs(venv, outside):
    """Both packages come from the wheel: ``ecaljenkins`` with its resources, and
    ``ecalautoctrl``, which ECAL's scripts import, reading the catalogue shipped."""
    root, wheel = venv
    assert wheel.name.startswith(f"ecaljenkins-{ecaljenkins.__version__}-")
    proc = run_in(venv, outside, "python", "-c",
                  "import ecaljenkins.resources as r, ecaljenkins.jobs as j, "
                  "ecaljenkins.workflows as w, ecaljenkins.registry as g, ecalautoctrl as a\n"
                  "from ecalautoctrl import RunCtrl, JobCtrl, QueryOMS\n"
                  "for path in (r.__file__, j.templates_dir(), w.catalogue_path(), "
                  "g.BUNDLED_CATALOGUE, a.__file__): print(path)\n"
                  "print(QueryOMS().get_run_attribute('362440', 'fill_number'))")
    assert proc.returncode == 0, proc.stderr
    *paths, fill = proc.stdout.split()
    assert len(paths) == 5 and fill == "8490"
    for path in paths:
        assert Path(path).resolve().is_relative_to(root.resolve()), paths
        assert Path(path).exists(), path


def test_version_of_both_commands(venv, outside):
    for script in ("ecalrunctrl.py", "ecalautomation.py"):
        proc = run_in(venv, outside, script, "--version")
        assert (proc.returncode, proc.stdout) == (0, f"{script} {ecaljenkins.__version__}\n")


def test_jobs_and_report_from_another_directory(venv, outside, env, db):
    campaign = "wheel_rereco"
    for args in (["create", "-c", campaign],
                 ["rtype-update", "-c", campaign, "--add", "demo-reco", "demo-calib"],
                 ["inject", "-c", campaign, "--runs", "362433,362440"]):
        proc = run_in(venv, outside, "ecalrunctrl.py", "--db", db, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    out = outside / "rendered"
    proc = run_in(venv, outside, "ecalrunctrl.py", "--db", db, "jobs", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{campaign}: {out}/{db}/{campaign}.yaml (2 job(s) validated)" in proc.stdout
    rendered = (out / db / f"{campaign}.yaml").read_text()
    assert "python3 -m ecaljenkins.examples.demo_calib" in rendered
    proc = run_in(venv, outside, "ecalrunctrl.py", "--db", db, "report", "-c", campaign,
                  "-o", "report.html")
    assert proc.returncode == 0, proc.stderr
    report = (outside / "report.html").read_text()
    assert campaign in report and "362440" in report


def test_demo_short_form_from_another_directory(venv, outside):
    proc = run_in(venv, outside, "python", "-m", "ecaljenkins.demo", "--runs", "2",
                  timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Done in" in proc.stdout
    # the example workflows ran, from the wheel, and wrote here
    outputs = sorted(p.relative_to(outside / "demo-output" / "data")
                     for p in (outside / "demo-output" / "data").rglob("*.txt"))
    assert [str(p) for p in outputs] == ["demo_rereco/demo-calib/362433.txt",
                                         "demo_rereco/demo-reco/362433.txt",
                                         "demo_rereco/demo-reco/362440.txt"]
