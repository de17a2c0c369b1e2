"""A private single-node HTCondor pool on loopback: the batch system of the tests and the demo.

Heavy ECAL tasks run as HTCondor jobs, and the tests need a real schedd to submit
them to. Debian 12 has no HTCondor package and the Debian 13 binaries need a newer
glibc, so on Debian 12 the pool runs from a Debian 13 root filesystem with
``minicondor``, built once with ``mmdebstrap`` and cached outside the checkout
(``ECAL_CONDOR_ROOTFS``, default ``/var/cache/ecaljenkins/condor-rootfs``). On a
machine with ``minicondor`` installed natively (Debian 13) the host's daemons run
instead. Measured facts: ``/work/shared/notes/htcondor-local-pool.md``.

Like :mod:`ecaljenkins.localinflux`, :class:`LocalCondor` writes a standalone config
in a temporary directory (never reading ``/etc/condor``), starts ``condor_master`` on
a free loopback port, waits for a slot and stops the master by its PID. Through
chroot, the master runs in a private mount namespace where the host's ``/tmp`` and
``proc`` are mounted into the root filesystem: the mounts vanish with the pool, even
if it is killed, and never stack up on the cached root filesystem. Jobs run inside
the root filesystem as its user of uid 1000; paths under ``/tmp`` are the same
inside and out, which is where the pool's directory and its work directory live.

The Python bindings (``htcondor2``, PyPI ``htcondor``, extra ``ecaljenkins[htcondor]``)
run on the host and reach the pool through ``CONDOR_CONFIG``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .condor import bindings
from .errors import CondorError, CondorUnavailable
from .localinflux import free_port
from .settings import Settings, current

DEFAULT_ROOTFS = "/var/cache/ecaljenkins/condor-rootfs"
#: the Debian release whose ``minicondor`` (23.9.6) the root filesystem holds
SUITE = "trixie"
#: jobs run as this uid (the root filesystem's user ``tester``, or the host's user)
JOB_UID = 1000
NATIVE_MASTER = "/usr/sbin/condor_master"
APT_SOURCES = "/etc/apt"

_CONFIG = """\
# A private single-node pool (ecaljenkins.localcondor): never reads /etc/condor.
LOCAL_DIR = {local}
LOCAL_CONFIG_FILE =
LOCAL_CONFIG_DIR =
RELEASE_DIR = /usr
BIN = $(RELEASE_DIR)/bin
SBIN = $(RELEASE_DIR)/sbin
LIB = $(RELEASE_DIR)/lib/condor
LIBEXEC = $(RELEASE_DIR)/libexec/condor
SHARE = $(RELEASE_DIR)/share/condor
RUN = $(LOCAL_DIR)/run
LOG = $(LOCAL_DIR)/log
LOCK = $(LOCAL_DIR)/lock
SPOOL = $(LOCAL_DIR)/spool
EXECUTE = $(LOCAL_DIR)/execute
CRED_STORE_DIR = $(LOCAL_DIR)/cred_dir
use ROLE: Personal
CONDOR_HOST = 127.0.0.1
COLLECTOR_HOST = 127.0.0.1:{port}
NETWORK_INTERFACE = 127.0.0.1
BIND_ALL_INTERFACES = False
USE_SHARED_PORT = False
UID_DOMAIN = localpool
FILESYSTEM_DOMAIN = localpool
# names from addresses, never from DNS: the host's name is unknown inside the root
# filesystem and each shadow or starter starting would wait 5 s for the resolver
NO_DNS = True
DEFAULT_DOMAIN_NAME = localpool
TRUST_UID_DOMAIN = True
SEC_DEFAULT_AUTHENTICATION = OPTIONAL
SEC_DEFAULT_AUTHENTICATION_METHODS = FS, CLAIMTOBE
SEC_CLIENT_AUTHENTICATION_METHODS = CLAIMTOBE
SEC_CLAIMTOBE_USER = {user}
SEC_DEFAULT_INTEGRITY = OPTIONAL
SEC_DEFAULT_ENCRYPTION = OPTIONAL
# anyone may do anything: the daemons listen on loopback only
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_ADMINISTRATOR = *
ALLOW_DAEMON = *
ALLOW_NEGOTIATOR = *
ALLOW_OWNER = *
NUM_CPUS = {cpus}
RUNBENCHMARKS = False
BASE_CGROUP =
USE_PID_NAMESPACES = False
# per-job mount namespaces fail in a chroot
MOUNT_UNDER_SCRATCH =
MOUNT_PRIVATE_DEV_SHM = False
# fast cycles: a trivial job completes in about a second
SCHEDD_INTERVAL = 1
NEGOTIATOR_INTERVAL = 1
NEGOTIATOR_MIN_INTERVAL = 0
NEGOTIATOR_CYCLE_DELAY = 1
NEGOTIATOR_UPDATE_AFTER_CYCLE = True
UPDATE_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 1
SHADOW_QUEUE_UPDATE_INTERVAL = 1
JOB_START_DELAY = 0
# periodic_remove (a build's timeout) evaluated every second, not every minute
PERIODIC_EXPR_INTERVAL = 1
"""


_NOT_ROOT = ("not root: the private HTCondor pool needs root (chroot and mounts, jobs run "
             f"as uid {JOB_UID})")


def rootfs_path(settings: Settings | None = None) -> Path:
    """Where the Debian 13 root filesystem is cached (``ECAL_CONDOR_ROOTFS`` overrides)."""
    return Path(current(settings).condor_rootfs or DEFAULT_ROOTFS)


def native() -> bool:
    """True where the host has HTCondor's daemons itself (``minicondor`` on Debian 13)."""
    return os.access(NATIVE_MASTER, os.X_OK)


def debian_mirror(apt_dir: str = APT_SOURCES, settings: Settings | None = None) -> str:
    """The Debian archive URI the machine's apt is configured with (not the security one).

    The root filesystem is built from it, so a machine behind a local mirror builds
    from that mirror; ``ECAL_CONDOR_MIRROR`` overrides.
    """
    if current(settings).condor_mirror:
        return current(settings).condor_mirror
    apt = Path(apt_dir)
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith(("#", " ")))
            fields = {key.strip().lower(): value.split() for key, value in fields.items()}
            if ("deb" in fields.get("types", ()) and fields.get("uris")
                    and not any("security" in suite for suite in fields.get("suites", ()))
                    and fields.get("enabled", ["yes"]) != ["no"]):
                return fields["uris"][0]
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and "security" not in words[2]:
                return words[1]
    raise CondorUnavailable(f"no Debian mirror configured in {apt}/sources.list(.d) "
                            "to build the HTCondor root filesystem from "
                            "(or set ECAL_CONDOR_MIRROR)")


def missing() -> str | None:
    """What keeps a private pool from running here, in one line; None if nothing.

    A root filesystem not built yet is not missing when it can be built (root,
    ``mmdebstrap``, a Debian mirror): :func:`ensure_rootfs` builds it.
    """
    try:
        bindings()
        if os.geteuid() != 0:
            raise CondorUnavailable(_NOT_ROOT)
        if native():
            return None
        if not shutil.which("unshare"):
            raise CondorUnavailable("unshare (util-linux) missing")
        if not (rootfs_path() / NATIVE_MASTER.lstrip("/")).exists():
            if not shutil.which("mmdebstrap"):
                raise CondorUnavailable(f"no HTCondor root filesystem at {rootfs_path()} and "
                                        "mmdebstrap missing to build it (apt-get install "
                                        "mmdebstrap)")
            debian_mirror()
    except CondorUnavailable as err:
        return str(err)
    return None


def ensure_rootfs() -> Path | None:
    """The root filesystem with ``minicondor``, built with ``mmdebstrap`` if missing
    (None where the host has the daemons natively).

    Built into a temporary directory beside it and renamed into place, so an
    interrupted build (about 25-45 s, 311 MB) is never taken for a good one.
    """
    if native():
        return None
    path = rootfs_path()
    if (path / NATIVE_MASTER.lstrip("/")).exists():
        return path
    problem = missing()
    if problem:
        raise CondorUnavailable(problem)
    path.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=path.name + ".building-", dir=path.parent))
    log = path.parent / (path.name + ".build.log")
    env = {k: v for k, v in os.environ.items() if k != "CONDOR_CONFIG"}  # breaks the install
    with open(log, "wb") as out:
        # mmdebstrap wants an empty or absent target: hand it the name, not the directory
        building.rmdir()
        done = subprocess.run(
            ["mmdebstrap", "--variant=apt", "--include=minicondor",
             f"--customize-hook=chroot \"$1\" useradd -u {JOB_UID} -m tester",
             SUITE, str(building), debian_mirror()],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise CondorError(f"mmdebstrap failed to build the HTCondor root filesystem "
                          f"(exit {done.returncode}); see {log}")
    try:
        building.rename(path)
    except OSError:  # another build won the race: keep its copy
        shutil.rmtree(building, ignore_errors=True)
    return path


def _passwd(root: Path) -> dict[str, tuple[int, int, str]]:
    """uid, gid and name of the users of ``root/etc/passwd``, by name and by "uid:N"."""
    users = {}
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        users[name] = users[f"uid:{uid}"] = (int(uid), int(gid), name)
    return users


class LocalCondor:
    """Start/stop a private single-node HTCondor pool. Use as a context manager.

    While it runs:

    - ``config``: the ``CONDOR_CONFIG`` path; :meth:`start` points this process's
      ``htcondor2`` bindings at it (``env()`` gives it for subprocesses),
    - ``collector``: ``"127.0.0.1:PORT"``; :meth:`schedd` the pool's ``htcondor2.Schedd``,
    - ``workdir``: a directory writable by the job user (``job_uid``), at the same
      path inside the root filesystem: the place for submit files, logs and outputs,
    - :meth:`command` runs an HTCondor tool of the pool (``condor_q``...),
    - ``htcondor``: the ``htcondor2`` module; ``job_user``/``job_uid``: who jobs run as.
    """

    def __init__(self, rootfs: str | Path | None = None, cpus: int = 2,
                 shared: tuple[str | Path, ...] = ()):
        self.rootfs = None if rootfs is None and native() else Path(rootfs or rootfs_path())
        if self.rootfs is not None:
            if not (self.rootfs / NATIVE_MASTER.lstrip("/")).exists():
                raise CondorUnavailable(f"no HTCondor root filesystem at {self.rootfs}: "
                                        "run 'make htcondor'")
        if os.geteuid() != 0:
            raise CondorUnavailable(_NOT_ROOT)
        self.htcondor = bindings()
        users = _passwd(self.rootfs or Path("/"))
        if f"uid:{JOB_UID}" not in users or "condor" not in users:
            raise CondorUnavailable(f"no user of uid {JOB_UID} or no user 'condor' in "
                                    f"{self.rootfs or ''}/etc/passwd")
        self.job_uid, self.job_gid, self.job_user = users[f"uid:{JOB_UID}"]
        self._condor_ids = users["condor"][:2]
        self.cpus = cpus
        #: directories of the host the jobs see at the same path (besides /tmp)
        self.shared = tuple(str(Path(path).resolve()) for path in shared)
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._restore_config: tuple[str | None] | None = None  # CONDOR_CONFIG before start

    @property
    def config(self) -> Path:
        return self.dir / "condor_config"

    @property
    def workdir(self) -> Path:
        return self.dir / "work"

    @property
    def collector(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict:
        return {"CONDOR_CONFIG": str(self.config)}

    def make_dir(self, name: str) -> Path:
        """A new directory under ``workdir`` the jobs may write (a job's initialdir)."""
        path = self.workdir / name
        path.mkdir(parents=True)
        os.chown(path, self.job_uid, self.job_gid)
        return path

    def python(self) -> str:
        """An interpreter the pool's jobs can run with this ecaljenkins importable: the
        ``ECAL_CONDOR_PYTHON`` of the htcondor executor on this pool.

        Natively, this process's own. In the root filesystem (its Python 3.13 has
        ``requests`` but not the rest), a launcher in the pool's directory puts a copy
        of the package and of its pure-Python dependencies on ``PYTHONPATH``.
        """
        if self.rootfs is None:
            return sys.executable
        launcher = self.dir / "python" / "python3"
        if not launcher.exists():
            import jinja2
            import markupsafe
            import yaml

            import ecaljenkins
            lib = launcher.parent / "lib"
            for module in (ecaljenkins, yaml, jinja2, markupsafe):
                source = Path(module.__file__).parent
                shutil.copytree(source, lib / source.name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.so"))
            launcher.write_text(f'#!/bin/sh\nPYTHONPATH={lib} PYTHONDONTWRITEBYTECODE=1 '
                                'exec /usr/bin/python3 "$@"\n')
            launcher.chmod(0o755)
        return str(launcher)

    def _in_root(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the root filesystem, in a mount namespace of its own."""
        if self.rootfs is None:
            return argv
        root = str(self.rootfs)
        shared = "".join(f'mkdir -p "{root}{path}" && mount --bind "{path}" "{root}{path}" && '
                         for path in self.shared)
        mounts = (f'mount --bind /tmp "{root}/tmp" && mount -t proc proc "{root}/proc" && '
                  f'{shared}exec chroot "{root}" "$@"')
        return ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", mounts, "sh", *argv]

    def command(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run an HTCondor tool against the pool (inside the root filesystem)."""
        return subprocess.run(self._in_root(list(argv)), env={**os.environ, **self.env()},
                              capture_output=True, text=True, check=check,
                              stdin=subprocess.DEVNULL)

    def start(self, timeout: float = 60.0) -> "LocalCondor":
        """Start the daemons and wait until the schedd and a slot show in the collector."""
        # under /tmp: the same path inside the root filesystem (the host's /tmp is mounted)
        self.dir = Path(tempfile.mkdtemp(prefix="ecal-condor-", dir="/tmp"))
        self.dir.chmod(0o755)
        local = self.dir / "local"
        for name in ("run", "log", "lock", "spool", "execute", "cred_dir"):
            (local / name).mkdir(parents=True)
            os.chown(local / name, *self._condor_ids)
        (local / "execute").chmod(0o755)
        (local / "cred_dir").chmod(0o700)
        self.workdir.mkdir()
        os.chown(self.workdir, self.job_uid, self.job_gid)
        self.port = free_port()
        self.config.write_text(_CONFIG.format(local=local, port=self.port,
                                              user=self.job_user, cpus=self.cpus))
        self._restore_config = (os.environ.get("CONDOR_CONFIG"),)
        os.environ["CONDOR_CONFIG"] = str(self.config)
        self.htcondor.reload_config()
        with open(self.dir / "master.out", "wb") as log:
            # -f: the master stays in the foreground, so its PID is ours to wait for
            self.proc = subprocess.Popen(self._in_root([NATIVE_MASTER, "-f"]),
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        htcondor = self.htcondor
        collector = htcondor.Collector(self.collector)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CondorError(f"condor_master exited at start (status "
                                  f"{self.proc.returncode}); see {self.dir}/master.out "
                                  f"and {self.dir}/local/log")
            try:
                if (collector.query(htcondor.AdTypes.Startd, projection=["Name"])
                        and collector.query(htcondor.AdTypes.Schedd, projection=["Name"])):
                    return
            except htcondor.HTCondorException:
                pass  # the collector is not listening yet
            time.sleep(0.1)
        raise CondorError(f"no HTCondor slot within {timeout:g}s; see {self.dir}/local/log")

    def schedd(self):
        """The pool's schedd (``htcondor2.Schedd``)."""
        htcondor = self.htcondor
        ad = htcondor.Collector(self.collector).locate(htcondor.DaemonTypes.Schedd)
        return htcondor.Schedd(ad)

    def stop(self, timeout: float = 30.0) -> None:
        """``condor_off -master``, wait for the master's PID, TERM that PID if still alive."""
        if self.proc and self.proc.poll() is None:
            try:
                htcondor = self.htcondor
                master = htcondor.Collector(self.collector).locate(htcondor.DaemonTypes.Master)
                htcondor.send_command(master, htcondor.DaemonCommands.OffGraceful)
                self.proc.wait(timeout)
            except Exception:  # whatever failed, the master is stopped by its PID
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self._restore_config is not None:
            (previous,), self._restore_config = self._restore_config, None
            if previous is None:
                os.environ.pop("CONDOR_CONFIG", None)
            else:
                os.environ["CONDOR_CONFIG"] = previous
            self.htcondor.reload_config()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "LocalCondor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    """``make htcondor``: build or reuse the root filesystem, or say what is missing."""
    problem = missing()
    if problem:
        print(f"HTCondor pool unavailable, its tests will not run: {problem}", file=sys.stderr)
        return 0
    if native():
        print(f"HTCondor pool: native daemons ({NATIVE_MASTER})")
        return 0
    path = rootfs_path()
    if (path / NATIVE_MASTER.lstrip("/")).exists():
        print(f"HTCondor pool: root filesystem {path} (cached; remove it to rebuild)")
        return 0
    print(f"building the HTCondor root filesystem in {path} (Debian {SUITE} with "
          "minicondor, about 30 s, once)")
    started = time.monotonic()
    ensure_rootfs()
    print(f"HTCondor pool: root filesystem {path} built in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
