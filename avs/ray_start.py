"""Starting Ray, one way for every stage: join the cluster of ``ray job submit`` or start an embedded local Ray.

init_ray()                                  # training / prediction: workers' progress lines shown
init_ray(num_cpus, log_to_driver=False)     # extraction: the driver prints the progress itself
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile

# Set for the embedded local Ray before it starts (its processes inherit them), unless the user set them: one
# machine is never drained by an autoscaler, so Ray Train's PreemptionWatcher actor (one more process per run,
# and a core_worker error line about its restartable constructor arguments) has nothing to watch.
EMBEDDED_RAY_ENV = {"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


def ray_is_embedded() -> bool:
    """Whether the connected Ray is one this process started itself (``ray.init()`` with no address and no cluster
    running on the machine): a one-machine cluster no node will join, with no autoscaler, so a resource it lacks
    is missing for good. False where ``ray.init()`` joined a running cluster (``RAY_ADDRESS``, or a head node's
    own cluster found without one), and False when Ray's internals cannot tell (then waiting is kept)."""
    import ray

    if not ray.is_initialized():
        return False
    try:
        from ray._private import worker  # (Ray 2.x: the driver's node; head=True only where this driver started it)

        node = worker._global_node
        return bool(node is not None and node.is_head())
    except Exception:  # pragma: no cover - another Ray layout
        return False


def ray_data_logging_config() -> str:
    """A Ray Data logging config (``RAY_DATA_LOGGING_CONFIG``) for the embedded Ray's processes: Ray's default
    (everything in the session's ray-data.log) with warnings only on the terminal, where Ray Data's actors would
    print INFO lines ("Dataset train_... execution finished in 7.60 seconds", per epoch and split), and without
    the notice that progress bars are off (each SplitCoordinator actor prints it once; avs turns them off and
    prints its own progress lines). Returns the file's path."""
    from ray.data._internal.logging import DEFAULT_CONFIG

    config = copy.deepcopy(DEFAULT_CONFIG)
    config["handlers"]["console"]["level"] = "WARNING"
    config["loggers"]["ray.data._internal.progress"] = {
        "level": "ERROR",
        "handlers": ["file", "console"],
        "propagate": False,
    }
    path = os.path.join(tempfile.gettempdir(), f"avs-ray-data-logging-{os.getuid()}.json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(config, fh)
    os.replace(tmp, path)
    return path


def init_ray(num_cpus: int | None = None, *, log_to_driver: bool = True) -> None:
    """Connect to the cluster of ``ray job submit`` (RAY_ADDRESS), or start an embedded local Ray.

    The embedded Ray has no dashboard (``include_dashboard=False``: nobody looks at a laptop run's dashboard, and
    it costs memory and start-up time), so Ray's State API, which the dashboard serves, is not there
    (``avs.train.job.state_api_available``). Token authentication stays on (Ray's default for a new local
    cluster); only Ray's notice that it is on is kept off the user's terminal."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
        return
    for key, value in EMBEDDED_RAY_ENV.items():
        os.environ.setdefault(key, value)
    if "RAY_DATA_LOGGING_CONFIG" not in os.environ and "RAY_DATA_LOG_LEVEL" not in os.environ:
        os.environ["RAY_DATA_LOGGING_CONFIG"] = ray_data_logging_config()
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=log_to_driver, configure_logging=False)


class MissingResources(RuntimeError):
    """The Ray cluster could not place what a run asked for (e.g. a GPU) within the time allowed."""


def wait_for_resources(
    bundles: list[dict[str, float]], timeout_s: float | None, what: str, hint: str = "", *, wait_hint: str = ""
) -> None:
    """Return once the connected Ray cluster can place ``bundles`` (one dict of resources per actor or worker,
    e.g. ``[{"GPU": 1, "CPU": 1}] * 2``), else raise ``MissingResources`` after ``timeout_s`` seconds with a
    message naming the missing resource. Without this, actors that ask for a GPU on a cluster without one wait
    forever. ``timeout_s=None``: no check (wait as Ray does). ``what`` names the asker, ``hint`` what to do;
    ``wait_hint`` (how to wait longer) is added only where waiting could help (not on the embedded Ray).

    The check is a placement group of ``bundles``: pending, it is the demand an autoscaling cluster starts
    nodes for (cluster.yaml's GPU workers); it is removed again either way, so the actors take the resources.
    On the embedded local Ray (``ray_is_embedded``) no node can join, so a resource the machine lacks fails at
    once instead of after ``timeout_s`` (a laptop run with ``device: cuda`` and no GPU).
    """
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    if timeout_s is None or not bundles:
        return
    need: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            need[key] = need.get(key, 0.0) + float(value)
    never = ray_is_embedded() and any(ray.cluster_resources().get(k, 0.0) < v for k, v in need.items())
    ready = []
    if not never:
        pg = placement_group(bundles, strategy="PACK")
        try:
            ready, _ = ray.wait([pg.ready()], timeout=max(0.0, float(timeout_s)))
        finally:
            remove_placement_group(pg)
    if ready:
        return
    total = ray.cluster_resources()
    free = ray.available_resources()
    short = {k: v for k, v in need.items() if total.get(k, 0.0) < v}
    have = ", ".join(f"{total.get(k, 0.0):g} {k} ({free.get(k, 0.0):g} free)" for k in need)
    asked = ", ".join(f"{v:g} {k}" for k, v in need.items())
    if short:
        missing = " and ".join(f"{k} (needs {v:g}, the cluster has {total.get(k, 0.0):g})" for k, v in short.items())
        if never:
            cause = f"this machine's embedded Ray lacks {missing}, and no other node can join it"
        else:
            cause = f"the Ray cluster lacks {missing}, and no node with it joined within {timeout_s:g} s"
    else:
        cause = f"the cluster has them but they stayed in use for {timeout_s:g} s (other jobs?)"
    advice = " ".join(h for h in (hint, "" if never else wait_hint) if h)
    raise MissingResources(f"{what} need {asked} in all; {cause}. {advice + ' ' if advice else ''}Cluster: {have}.")
