"""The pinned install of the Jenkinsfile and the generated jobs (data/install-venv.sh), for real.

A wheel of a stand-in ``ecaljenkins`` is installed from a local wheelhouse
(no index): the venv is made once per version and reused while it stays.
"""

import os
import zipfile

from ecaljenkins.resources import shipped

from fixtures.leaks import run_recorded

SCRIPT = shipped("data", "install-venv.sh")


def wheel(folder, version: str) -> None:
    """A minimal pure-Python wheel ``ecaljenkins==version`` holding one module."""
    info = f"ecaljenkins-{version}.dist-info"
    files = {"ecaljenkins_standin.py": f"VERSION = {version!r}\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: ecaljenkins\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(folder / f"ecaljenkins-{version}-py3-none-any.whl", "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)


def install(tmp_path, version: str, path: str | None = None):
    env = {"PATH": path or os.environ["PATH"], "HOME": str(tmp_path),
           "ECAL_VENV_ROOT": str(tmp_path / "venvs"), "ECAL_WHEELHOUSE": str(tmp_path / "wheels"),
           "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return run_recorded(["/bin/sh", str(SCRIPT), version], env=env, timeout=300)


def test_a_venv_per_version_made_once(tmp_path):
    (tmp_path / "wheels").mkdir()
    for version in ("9.9.8", "9.9.9"):
        wheel(tmp_path / "wheels", version)
    first = install(tmp_path, "9.9.8")
    venv = tmp_path / "venvs" / "9.9.8"
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(venv)
    assert (venv / ".installed").read_text().strip() == "9.9.8"
    check = run_recorded([str(venv / "bin" / "python"), "-c",
                          "import ecaljenkins_standin as m; print(m.VERSION)"])
    assert check.stdout.strip() == "9.9.8"
    # the same version again installs nothing: no python3, no pip on the PATH is needed
    again = install(tmp_path, "9.9.8", path="/nonexistent")
    assert again.returncode == 0 and again.stdout.strip() == str(venv), again.stderr
    # another version gets its own venv, the first one stays for builds still using it
    other = install(tmp_path, "9.9.9")
    assert other.returncode == 0 and other.stdout.strip() == str(tmp_path / "venvs" / "9.9.9")
    assert (venv / ".installed").exists()
    # a version nobody provides fails the build, and leaves no venv counted complete
    missing = install(tmp_path, "1.2.3")
    assert missing.returncode != 0 and not (tmp_path / "venvs" / "1.2.3" / ".installed").exists()
