"""cluster.yaml keeps the cluster private: the dashboard (and its job-submission API, which runs arbitrary code:
CVE-2023-48022 "ShadowRay") listens on the head's loopback only, and every `ray start` has Ray's token
authentication on, with the token copied to the nodes by the launcher rather than written into the commands.

``cluster_problems`` reads a launcher config (a dict from ``yaml.safe_load``) and lists what breaks those rules;
the repository's cluster.yaml must have none, and crafted bad configs must each be caught.
"""

from __future__ import annotations

import copy
import ipaddress
import shlex
from pathlib import Path

import pytest
import yaml

CLUSTER_YAML = Path(__file__).parents[1] / "cluster.yaml"
DEFAULT_TOKEN_PATH = "~/.ray/auth_token"  # where Ray looks when neither RAY_AUTH_TOKEN nor RAY_AUTH_TOKEN_PATH is set
_OPERATORS = {"&&", "||", ";", "|", "&"}


def ray_start_commands(commands: list[str]) -> list[tuple[dict[str, str], list[str]]]:
    """``(environment, arguments after "ray start")`` for every `ray start` in a list of shell commands.

    Understands ``A=1 B=2 ray start ...``, ``env A=1 ray start ...`` and ``export A=1 && ray start ...``
    (an export holds for the rest of its command string; each command runs in a shell of its own)."""
    found = []
    for command in commands or []:
        lexer = shlex.shlex(str(command), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        exported: dict[str, str] = {}
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token not in _OPERATORS:
                segment.append(token)
                continue
            words, env = list(segment), {}
            segment = []
            if words and words[0] == "export":
                exported.update(w.split("=", 1) for w in words[1:] if "=" in w)
                continue
            if words and words[0] == "env":
                words = words[1:]
            while words and "=" in words[0] and not words[0].startswith("-"):
                key, value = words.pop(0).split("=", 1)
                env[key] = value
            if len(words) >= 2 and Path(words[0]).name == "ray" and words[1] == "start":
                found.append(({**exported, **env}, words[2:]))
    return found


def option_values(args: list[str], name: str) -> list[str]:
    """Values of ``--name=value`` and ``--name value`` in ``args``."""
    values = []
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == name:
            values.append(args[i + 1] if i + 1 < len(args) else "")
    return values


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to any interface
        return False


def cluster_problems(config: dict) -> list[str]:
    """What in a Ray cluster launcher config exposes the dashboard or leaves token authentication off."""
    problems = []
    mounts = {str(k) for k in (config.get("file_mounts") or {})}
    head = ray_start_commands(config.get("head_start_ray_commands"))
    workers = ray_start_commands(config.get("worker_start_ray_commands"))
    if not any("--head" in args for _, args in head):
        problems.append("head_start_ray_commands has no `ray start --head`")
    if not workers:
        problems.append("worker_start_ray_commands has no `ray start`")
    for where, starts in (("head", head), ("worker", workers)):
        for env, args in starts:
            cmd = f"{where}: ray start {' '.join(args)}"
            if where == "head":
                hosts = option_values(args, "--dashboard-host")
                if not hosts:
                    problems.append(f"{cmd}: no --dashboard-host=127.0.0.1 (the dashboard's bind address is implicit)")
                problems += [f"{cmd}: dashboard binds to {h!r}, not loopback" for h in hosts if not is_loopback(h)]
            if env.get("RAY_AUTH_MODE", "").lower() != "token":
                problems.append(f"{cmd}: token authentication off (needs RAY_AUTH_MODE=token)")
            if "RAY_AUTH_TOKEN" in env:
                problems.append(f"{cmd}: the token is written into the command (RAY_AUTH_TOKEN=...)")
            token_file = env.get("RAY_AUTH_TOKEN_PATH", DEFAULT_TOKEN_PATH)
            if "RAY_AUTH_TOKEN" not in env and token_file not in mounts:
                problems.append(f"{cmd}: the token file {token_file} is not in file_mounts, so nodes lack it")
    return problems


# ------------------------------------------------------------------------------------------------ the repository's


def test_cluster_yaml_keeps_dashboard_on_loopback_and_token_auth_on():
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    assert cluster_problems(config) == []
    head = ray_start_commands(config["head_start_ray_commands"])
    assert head, "no ray start in head_start_ray_commands"
    for env, args in head:
        assert all(is_loopback(h) for h in option_values(args, "--dashboard-host"))
        assert env["RAY_AUTH_MODE"] == "token"
    assert all(env["RAY_AUTH_MODE"] == "token" for env, _ in ray_start_commands(config["worker_start_ray_commands"]))
    assert "dashboard-host=0.0.0.0" not in CLUSTER_YAML.read_text()  # not even in a comment to copy from


# ------------------------------------------------------------------------------------------------ the checker


GOOD = {
    "file_mounts": {"~/avs": ".", "~/.ray/auth_token": "~/.ray/auth_token"},
    "head_start_ray_commands": [
        "ray stop",
        "RAY_AUTH_MODE=token ray start --head --port=6379 --dashboard-host=127.0.0.1 --autoscaling-config=x.yaml",
    ],
    "worker_start_ray_commands": ["ray stop", "RAY_AUTH_MODE=token ray start --address=$RAY_HEAD_IP:6379"],
}


def _with(**changes) -> dict:
    config = copy.deepcopy(GOOD)
    config.update(changes)
    return config


def _head(command: str) -> dict:
    return _with(head_start_ray_commands=["ray stop", command])


def test_checker_accepts_the_good_forms():
    assert cluster_problems(GOOD) == []
    for command in (
        "export RAY_AUTH_MODE=token && ray start --head --dashboard-host 127.0.0.1",
        "env RAY_AUTH_MODE=token ray start --head --dashboard-host=localhost",
        "RAY_AUTH_MODE=token ~/.local/bin/ray start --head --dashboard-host=::1",
        "RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=~/.ray/auth_token ray start --head --dashboard-host=127.0.0.2",
    ):
        assert cluster_problems(_head(command)) == [], command


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "[::]", "10.0.0.5", "192.168.1.2", "head.internal", "$(hostname -I)", ""]
)
def test_checker_rejects_a_dashboard_off_loopback(host):
    for command in (
        f"RAY_AUTH_MODE=token ray start --head --port=6379 --dashboard-host={host}",
        f"RAY_AUTH_MODE=token ray start --head --port=6379 --dashboard-host {shlex.quote(host)}",
    ):
        problems = cluster_problems(_head(command))
        assert problems and all("dashboard binds" in p for p in problems), (command, problems)


def test_checker_rejects_the_old_cluster_yaml():
    old = yaml.safe_load(
        """
file_mounts: {"~/avs": "."}
head_start_ray_commands:
  - ray stop
  - ray start --head --port=6379 --dashboard-host=0.0.0.0 --autoscaling-config=~/ray_bootstrap_config.yaml
worker_start_ray_commands:
  - ray stop
  - ray start --address=$RAY_HEAD_IP:6379
"""
    )
    problems = "\n".join(cluster_problems(old))
    assert "dashboard binds to '0.0.0.0'" in problems
    assert "head: ray start --head" in problems and "worker: ray start --address" in problems
    assert problems.count("token authentication off") == 2 and "not in file_mounts" in problems


@pytest.mark.parametrize(
    "config, expected",
    [
        (_head("RAY_AUTH_MODE=token ray start --head"), "no --dashboard-host"),
        (_head("ray start --head --dashboard-host=127.0.0.1"), "token authentication off"),
        (_head("RAY_AUTH_MODE=disabled ray start --head --dashboard-host=127.0.0.1"), "token authentication off"),
        (_head("RAY_AUTH_MODE=token ray stop && ray start --head --dashboard-host=127.0.0.1"), "authentication off"),
        (_head("RAY_AUTH_MODE=token RAY_AUTH_TOKEN=abc ray start --head --dashboard-host=127.0.0.1"), "written into"),
        (_head("RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=/etc/t ray start --head --dashboard-host=::1"), "/etc/t"),
        (_with(worker_start_ray_commands=["ray start --address=$RAY_HEAD_IP:6379"]), "worker: ray start"),
        (_with(file_mounts={"~/avs": "."}), "not in file_mounts"),
        (_with(head_start_ray_commands=["ray stop"]), "no `ray start --head`"),
        (_with(worker_start_ray_commands=[]), "no `ray start`"),
    ],
)
def test_checker_rejects_token_auth_gaps(config, expected):
    problems = cluster_problems(config)
    assert any(expected in p for p in problems), problems


def test_setup_commands_are_strings_and_install_the_right_profile():
    """Each setup command is one shell string (an unquoted ``--only-binary :all: -r`` is a YAML mapping, which
    the launcher cannot run); the head and CPU workers install the CPU cluster lock, GPU workers the GPU one."""
    config = yaml.safe_load(CLUSTER_YAML.read_text())
    gpu = config["available_node_types"]["gpu_worker"]["worker_setup_commands"]
    lists = {
        "setup": config["setup_commands"],
        "head": config["head_setup_commands"],
        "cpu_worker": config["worker_setup_commands"],
        "gpu_worker": gpu,
    }
    for name, commands in lists.items():
        assert all(isinstance(c, str) for c in commands), name
    assert any("lock-build.txt" in c for c in lists["setup"])
    for name in ("head", "cpu_worker"):
        assert any("requirements/lock-cluster.txt" in c for c in lists[name]) and not any(
            "lock-gpu" in c for c in lists[name]
        )
    assert any("requirements/lock-gpu.txt" in c for c in gpu) and not any("lock-cluster" in c for c in gpu)
