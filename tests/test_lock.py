"""The committed lock covers every dependency pyproject.toml names, at a version its range admits; every
package installs from a wheel but the few PyPI has only as source, built with locked tools."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock-cpu.txt"
CLUSTER_LOCK = ROOT / "requirements" / "lock-cluster.txt"
GPU_LOCK = ROOT / "requirements" / "lock-gpu.txt"  # the GPU profile (scripts/install.sh gpu, cluster GPU workers)
BUILD_LOCK = ROOT / "requirements" / "lock-build.txt"  # the build tools of the source-only packages
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
LOCKED_EXTRAS = {  # extras each lock installs
    LOCK: ("cpu", "dev"),
    CLUSTER_LOCK: ("cpu", "dev", "cluster"),
    GPU_LOCK: ("gpu", "dev", "cluster"),
}
# Where the GPU set may differ from the CPU one: the faiss build, and packaging (DALI 2.4 caps it at <= 26.3)
GPU_ONLY_VERSIONS = {"faiss-cpu", "packaging"}


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


def test_profiles_hold_exactly_one_faiss():
    """faiss-cpu and faiss-gpu install the same `faiss` folder: each profile has one of them, and the GPU profile
    carries DALI for torch's CUDA (PyPI's torch 2.11 is a cu130 build) with `frames=` (DALI >= 2)."""
    faiss = {"faiss-cpu", "faiss-gpu", "faiss-gpu-cu12", "faiss-gpu-cuvs", "faiss-cuda"}
    for lock, want in ((LOCK, "faiss-cpu"), (CLUSTER_LOCK, "faiss-cpu"), (GPU_LOCK, "faiss-gpu")):
        assert set(read_lock(lock.read_text())) & faiss == {want}, lock.name
    gpu, cpu = read_lock(GPU_LOCK.read_text()), read_lock(LOCK.read_text())
    assert gpu["faiss-gpu"].startswith("1.15.") and int(gpu["nvidia-dali-cuda130"].split(".")[0]) >= 2
    assert not any(name.startswith("nvidia-dali-cuda12") for name in gpu)
    assert not any(name.startswith("nvidia-dali") for name in cpu)  # ~200 MB kept off CPU machines and CI
    same = {name: gpu.get(name) for name in cpu if name not in GPU_ONLY_VERSIONS}
    assert same == {name: v for name, v in cpu.items() if name not in GPU_ONLY_VERSIONS}  # the tested versions


def test_base_dependencies_name_no_faiss_build():
    """`faiss` comes from a profile (extra cpu or gpu), never from the base list (which would put faiss-cpu next
    to a GPU wheel)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert not any(n.startswith("faiss") for n in names)
    extras = project["optional-dependencies"]
    assert [Requirement(r).name for r in extras["cpu"]] == ["faiss-cpu"]
    assert {Requirement(r).name for r in extras["gpu"]} == {"faiss-gpu", "nvidia-dali-cuda130"}


def pip_options(text: str) -> list[tuple[str, str]]:
    """The option lines of a requirements file, in order: ``[("--only-binary", ":all:"), ...]``."""
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.startswith("--")]


def source_packages(text: str) -> set[str]:
    """Packages a lock lets pip build from source: those after ``--only-binary :all:`` in ``--no-binary`` lines."""
    return {canonicalize_name(n) for opt, value in pip_options(text) if opt == "--no-binary" for n in value.split(",")}


def test_locks_pin_exact_versions_with_hashes():
    for lock in (*LOCKED_EXTRAS, BUILD_LOCK):
        body = "\n".join(line for line in lock.read_text().splitlines()[2:] if not line.startswith("--"))
        entries = re.split(r"\n(?=[A-Za-z0-9])", body)  # one entry per package
        for entry in entries:
            if entry.strip():
                assert "==" in entry.splitlines()[0] and "--hash=sha256:" in entry, entry.splitlines()[0]


def test_only_the_named_source_packages_may_be_built():
    """Each lock says `--only-binary :all:` and then `--no-binary NAME` for the packages PyPI has no wheel of
    (pip applies the options in order: an `--only-binary :all:` after them would cancel the exceptions), the
    same names in every lock, each pinned by it, and scripts/lock.sh resolves with the same rule."""
    cpu = source_packages(LOCK.read_text())
    assert cpu == {"dcase-util", "sed-eval", "sed-scores-eval"}
    for lock in (*LOCKED_EXTRAS, BUILD_LOCK):
        text = lock.read_text()
        options = pip_options(text)
        assert options[0] == ("--only-binary", ":all:"), lock.name
        assert all(opt == "--no-binary" for opt, _ in options[1:]), lock.name
        assert source_packages(text) == cpu, lock.name
        if lock is not BUILD_LOCK:
            assert cpu <= set(read_lock(text)), lock.name
    script = (ROOT / "scripts" / "lock.sh").read_text()
    assert re.search(r"^SDISTS=(\S+)$", script, re.M).group(1).split(",") == sorted(cpu)


def test_build_tools_are_locked_at_the_lock_versions_and_installed_first():
    """quickstart.sh installs lock-build.txt (setuptools, Cython, numpy) and then builds the source packages
    with --no-build-isolation, so their builds use those locked, hash-checked tools and fetch nothing else."""
    build, cpu = read_lock(BUILD_LOCK.read_text()), read_lock(LOCK.read_text())
    assert set(build) == {"setuptools", "cython", "numpy"}
    assert {name: cpu.get(name) for name in build} == build  # the versions the tested set runs with
    assert "bash scripts/install.sh cpu" in (ROOT / "scripts" / "quickstart.sh").read_text()
    commands = (ROOT / "scripts" / "install.sh").read_text().replace("\\\n", " ").splitlines()
    installs = [c for c in commands if "pip install" in c and " -r " in c]
    assert [c.split(" -r ")[1].split()[0] for c in installs] == ["requirements/lock-build.txt", '"$LOCK"']
    assert all("--require-hashes" in c and "--only-binary :all:" in c for c in installs)
    assert "--no-build-isolation" in installs[1]
    assert "cpu) LOCK=requirements/lock-cpu.txt" in "\n".join(commands)
    assert "gpu) LOCK=requirements/lock-gpu.txt" in "\n".join(commands)


def test_coverage_check_catches_a_missing_or_stale_pin():
    pins = read_lock("numpy==2.4.6 \\\n    --hash=sha256:00\ntorch==2.11.0\n")
    assert pins == {"numpy": "2.4.6", "torch": "2.11.0"}
    assert uncovered(["numpy>=1.26", "torch==2.11.*"], pins, LOCK_ENV) == []
    assert uncovered(["scipy>=1.11"], pins, LOCK_ENV) == ["scipy>=1.11 (lock: absent)"]
    assert uncovered(["numpy<2"], pins, LOCK_ENV) == ["numpy<2 (lock: 2.4.6)"]
    assert uncovered(["decord>=0.6; platform_machine == 'aarch64'"], pins, LOCK_ENV) == []  # not for this platform
