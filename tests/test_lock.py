"""The committed lock covers every dependency pyproject.toml names, at a version its range admits."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock-cpu.txt"
CLUSTER_LOCK = ROOT / "requirements" / "lock-cluster.txt"
# The platform the lock is made for (scripts/lock.sh): CPython 3.11 on x86_64 Linux.
LOCK_ENV = {
    "platform_machine": "x86_64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
LOCKED_EXTRAS = {LOCK: ("dev",), CLUSTER_LOCK: ("dev", "cluster")}  # extras each lock installs


def read_lock(text: str) -> dict[str, str]:
    """name -> exact version of every `name==version` line of a pip requirements lock."""
    pins = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(3)
    return pins


def uncovered(requirements: list[str], pins: dict[str, str], env: dict[str, str]) -> list[str]:
    """The requirements (for ``env``) that the lock does not pin, or pins at a version outside their range."""
    missing = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None or (req.specifier and not req.specifier.contains(version, prereleases=True)):
            missing.append(f"{text} (lock: {version or 'absent'})")
    return missing


def _pyproject_requirements(extras: tuple[str, ...]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    return reqs


def test_locks_cover_every_dependency_of_pyproject():
    for lock, extras in LOCKED_EXTRAS.items():
        pins = read_lock(lock.read_text())
        assert len(pins) > 50  # the whole transitive set, not only the direct dependencies
        assert uncovered(_pyproject_requirements(extras), pins, LOCK_ENV) == [], f"{lock.name}: bash scripts/lock.sh"


def test_cluster_lock_is_the_cpu_lock_plus_the_cluster_extra():
    cpu, cluster = read_lock(LOCK.read_text()), read_lock(CLUSTER_LOCK.read_text())
    assert {name: cluster.get(name) for name in cpu} == cpu  # the tested versions, on the cluster too


def test_locks_pin_exact_versions_with_hashes():
    for lock in LOCKED_EXTRAS:
        text = lock.read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])  # one entry per package
        for entry in entries:
            if entry.strip():
                assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry.splitlines()[0]


def test_coverage_check_catches_a_missing_or_stale_pin():
    pins = read_lock("numpy==2.4.6 \\\n    --hash=sha256:00\ntorch==2.11.0\n")
    assert pins == {"numpy": "2.4.6", "torch": "2.11.0"}
    assert uncovered(["numpy>=1.26", "torch==2.11.*"], pins, LOCK_ENV) == []
    assert uncovered(["scipy>=1.11"], pins, LOCK_ENV) == ["scipy>=1.11 (lock: absent)"]
    assert uncovered(["numpy<2"], pins, LOCK_ENV) == ["numpy<2 (lock: 2.4.6)"]
    assert uncovered(["decord>=0.6; platform_machine == 'aarch64'"], pins, LOCK_ENV) == []  # not for this platform
