"""The one Ray Train entry: ``train_loop_per_worker(config)`` runs any registered task (``avs.train.task``).

``config`` (built by ``avs.train.job.run_train``): ``{"train": TrainConfig as a dict, "run": RunInfo as a dict,
"task": the task's config as a dict, "rows": {dataset: rows}}``; optional ``"fail_once": {"epoch": k, "flag":
path}`` makes rank 0 raise once at the start of epoch k (fault injection for tests; ``flag`` records it).

The loop owns what every method shares and knows nothing about labels:
  - device (``ray.train.torch.get_device``), seeding (``seed * 1000 + rank`` before the task builds its
    modules), the DDP wrap (``find_unused_parameters`` from the task), AMP (bf16 on CUDA where supported, else
    fp16 with a grad scaler; off on CPU);
  - the optimizer (``avs.train.optim``, over ``mods.net``'s trainable parameters), gradient clipping, the
    schedule (stepped per step or per epoch as configured);
  - the named training streams of the task, one batch per step (``avs.train.streams.mixed_batches``; seeded
    local shuffles per epoch and rank; ``drop_last`` so every worker takes the same steps);
  - validation: the task's per-batch sums, summed over the workers (or, with ``split_validation = False``,
    every worker sees every row), turned into metrics by the task;
  - every epoch ``ray.train.report(metrics, checkpoint=...)``: rank 0 writes ``model.pt`` (the exported module,
    ``avs.models.checkpoint.save_checkpoint``) and ``train_state.pt`` (net, aux modules, optimizer, schedule,
    grad scaler, task state, torch RNG states, step; ``torch.load(weights_only=True)``-safe) plus
    ``train_state.json`` (history). A restarted worker group (``FailureConfig``) or ``--resume`` loads the latest
    checkpoint and continues with the next epoch bit for bit: a resumed seeded run ends with the weights of an
    uninterrupted one (with ``deterministic``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, TextIO

import torch

CHECKPOINT_FILE = "model.pt"  # the exported module + metadata (what `avs predict` and the best model come from)
STATE_FILE = "train_state.json"  # epoch, history, starts (JSON)
TENSORS_FILE = "train_state.pt"  # everything needed to continue (weights_only-safe)


def _fmt_seconds(seconds: float) -> str:
    from avs.progress import _fmt_seconds as fmt

    return fmt(seconds) if seconds == seconds and seconds != math.inf else "?"


class _Lines:
    """stdout for progress lines. Ray Train patches ``print`` so that prints to sys.stdout / sys.stderr go to
    its logger *and* (in worker processes, whose stdout is redirected) to the stream: each line twice. A
    print to any other file object is left alone."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def all_reduce_sums(sums: dict[str, float], device: torch.device, world_size: int) -> dict[str, float]:
    """Sum a dict of floats over the workers (keys sorted, so every rank sends the same vector)."""
    if world_size <= 1 or not sums:
        return dict(sums)
    import torch.distributed as dist

    keys = sorted(sums)
    t = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, t.tolist(), strict=True))


def _add(total: dict[str, float], part: dict[str, float]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0.0) + float(v)


def _maybe_fail(config: dict[str, Any], epoch: int, rank: int) -> None:
    spec = config.get("fail_once")
    if not spec or int(spec["epoch"]) != epoch or rank != 0:
        return
    flag = spec["flag"]
    if os.path.exists(flag):
        return
    with open(flag, "w") as fh:
        fh.write(f"failed at epoch {epoch}\n")
    raise RuntimeError(f"injected failure at the start of epoch {epoch} (fail_once; flag {flag})")


def quiet_ray_logs() -> None:
    """Ray Data progress bars and Ray Train's per-report INFO lines drown the epoch lines: keep warnings only."""
    import logging

    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    names = ["ray.data", "ray.train"]
    try:
        from ray.train.v2._internal.execution import context as v2_context

        names.append(v2_context.__file__)  # that module's logger is named after its file
    except ImportError:  # pragma: no cover - other Ray versions
        pass
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    # its one notice that the bars are off (a WARNING) answers the setting just made
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def shuffle_seed(seed: int, epoch: int, rank: int, stream: int = 0) -> int:
    """Local-shuffle seed of one stream in one epoch on one worker: fixed by the run's seed, so a resumed
    epoch shuffles as the uninterrupted one did."""
    return (seed * 10007 + epoch * 101 + rank + stream * 7919) % (2**31)


def drops_last(rows: int, batch_size: int, world: int) -> bool:
    """Every worker takes the same number of steps (DDP): drop the last partial batch with several workers; with
    one, only when it would be a single row (BatchNorm cannot train on one row)."""
    return world > 1 or (rows % batch_size == 1 and rows > 1)


def steps_in_epoch(rows: int, batch_size: int, world: int) -> int:
    """Optimizer steps of one epoch on one worker holding ``rows`` rows of the lead stream."""
    if drops_last(rows, batch_size, world):
        return max(1, rows // batch_size)
    return max(1, math.ceil(rows / batch_size))


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _restore(mods, optimizer, schedule, scaler, task) -> dict[str, Any] | None:
    """The latest Ray Train checkpoint's state (net, optimizer, schedule, scaler loaded), or None."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        tensors = torch.load(os.path.join(d, TENSORS_FILE), map_location="cpu", weights_only=True)
        with open(os.path.join(d, STATE_FILE)) as fh:
            state = json.load(fh)
    mods.net.load_state_dict(tensors["net"])
    optimizer.load_state_dict(tensors["optimizer"])
    schedule.load_state_dict(tensors["schedule"])
    if scaler is not None and tensors.get("scaler"):
        scaler.load_state_dict(tensors["scaler"])
    task.load_state_dict(tensors.get("task", {}))
    state["_tensors"] = tensors
    return state


def _write_checkpoint(tmp: str, mods, optimizer, schedule, scaler, task, device, state, extra) -> None:
    from avs.models import save_checkpoint
    from avs.models.checkpoint import unwrap_model

    save_checkpoint(os.path.join(tmp, CHECKPOINT_FILE), task.export(mods), extra)
    tensors = {
        "net": {k: v.detach().cpu() for k, v in unwrap_model(mods.net).state_dict().items()},
        "aux": {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in mods.aux.items()},
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "task": task.state_dict(),
        "rng": _rng_state(device),
        "step": state["step"],
    }
    torch.save(tensors, os.path.join(tmp, TENSORS_FILE))
    with open(os.path.join(tmp, STATE_FILE), "w") as fh:
        json.dump(state, fh, indent=1)


def _prefixes(net: torch.nn.Module, names: Sequence[str]) -> tuple[str, ...]:
    """Name prefixes with ``head`` standing for the model's own classifier, wherever it keeps it."""
    from avs.models.init_from import classifier_prefixes

    out = tuple(p for p in names if p != "head")
    return out + (classifier_prefixes(net) if "head" in names else ())


def _init_from(net: torch.nn.Module, cfg: Any, rank: int) -> None:
    """Partial loading of another run's weights (``init_from``, less the ``init_drop`` prefixes) and, with
    ``freeze_trunk``, training only what was not loaded (a new head) and the ``trainable`` prefixes; without
    ``init_from``, ``freeze_trunk`` trains the classifier and ``trainable`` on the initial (random or ImageNet)
    trunk."""
    from avs.models.files import model_file
    from avs.models.init_from import freeze_trunk, init_from

    extra = _prefixes(net, cfg.trainable)
    if not cfg.init_from:
        names = freeze_trunk(net, trainable=_prefixes(net, ("head",)) + extra)
        if rank == 0:
            print(f"[avs train] trunk frozen: {len(names)} parameter tensors train", file=_Lines(sys.stdout))
        return
    report = init_from(model_file(cfg.init_from), net, drop=_prefixes(net, cfg.init_drop))
    if cfg.freeze_trunk:
        freeze_trunk(net, trainable=tuple(report.missing) + extra)
    if rank == 0:
        print(
            f"[avs train] init_from {cfg.init_from}: {len(report.loaded)} tensors loaded, {len(report.dropped)} "
            f"dropped, {len(report.missing)} fresh" + (" (trunk frozen)" if cfg.freeze_trunk else ""),
            file=_Lines(sys.stdout),
            flush=True,
        )


def _line(epoch: int, epochs: int, metrics: dict[str, Any], world: int, eta: float) -> str:
    def fmt(key: str) -> str:
        v = metrics[key]
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    train = " ".join(f"{k[6:]} {fmt(k)}" for k in metrics if k.startswith("train_") and k != "train_samples")
    val = " ".join(f"{k[4:]} {fmt(k)}" for k in metrics if k.startswith("val_") and k != "val_samples")
    return (
        f"[avs train] epoch {epoch}/{epochs}: train {train} | val {val} | lr {metrics['lr']:.3g} | "
        f"{metrics['samples_per_s']:.1f} samples/s ({world} worker(s)), epoch {_fmt_seconds(metrics['epoch_s'])}, "
        f"ETA {_fmt_seconds(eta)}"
    )


def amp_dtype(device: torch.device) -> torch.dtype:
    """Autocast dtype on CUDA: bf16 where the GPU computes it natively (Ampere and later), else fp16 with a grad
    scaler. ``including_emulation=False``: torch's default also says yes to bf16 emulated in fp32 on older GPUs
    (e.g. V100, T4), which is slower than fp16 and gains nothing."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    return torch.float16


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    from ray.train import Checkpoint

    from avs.config import from_dict
    from avs.progress import Progress
    from avs.train.config import TrainConfig
    from avs.train.optim import Schedule, build_optimizer
    from avs.train.streams import mixed_batches
    from avs.train.task import RunInfo, StepInfo, create_task

    quiet_ray_logs()
    cfg = from_dict(TrainConfig, config["train"])
    run = from_dict(RunInfo, config["run"])
    task = create_task(cfg.task, config["task"], run)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    if cfg.torch_threads and device.type == "cpu":
        torch.set_num_threads(int(cfg.torch_threads))
    torch.manual_seed(cfg.seed * 1000 + rank)
    use_amp = bool(cfg.amp and device.type == "cuda")
    autocast_dtype = amp_dtype(device) if use_amp else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and autocast_dtype == torch.float16 else None

    specs = task.train_streams()
    rows = config.get("rows", {})
    lead = next((s for s in specs if s.lead), specs[0])
    lead_rows = max(1, int(rows.get(lead.name, 0)) // world)
    steps_per_epoch = steps_in_epoch(lead_rows, lead.batch_size, world)

    mods = task.build()
    if cfg.init_from or cfg.freeze_trunk:
        _init_from(mods.net, cfg, rank)
    mods.net = mods.net.to(device)
    optimizer = build_optimizer([p for p in mods.net.parameters() if p.requires_grad], cfg.optimizer)
    schedule = Schedule(optimizer, cfg.schedule.with_steps_per_epoch(steps_per_epoch))
    restored = _restore(mods, optimizer, schedule, scaler, task)
    start_epoch = int(restored["epoch"]) + 1 if restored else 1
    history = list(restored["history"]) if restored else []
    starts = [*(restored.get("starts", []) if restored else []), start_epoch]
    step = int(restored["step"]) if restored else 0
    kwargs = {"find_unused_parameters": True} if task.find_unused_parameters else {}
    mods.net = ray.train.torch.prepare_model(mods.net, parallel_strategy_kwargs=kwargs or None)
    task.on_fit_start(mods)
    for m in mods.aux.values():
        m.to(device)
    if restored:
        tensors = restored.pop("_tensors")
        for name, m in mods.aux.items():
            m.load_state_dict(tensors["aux"][name])
        _set_rng_state(tensors["rng"], device)

    shards = {s.name: ray.train.get_dataset_shard(s.name) for s in specs}
    val_shard = ray.train.get_dataset_shard("val")
    params = [p for p in mods.net.parameters() if p.requires_grad]
    log = _Lines(sys.stdout)
    if rank == 0 and start_epoch > 1:
        print(f"[avs train] resuming from the checkpoint of epoch {start_epoch - 1}", file=log, flush=True)
    epoch_seconds: list[float] = []

    def source(index: int, name: str, epoch: int, n_rows: int):
        def batches(batch_size: int):
            return shards[name].iter_torch_batches(
                batch_size=batch_size,
                device=device,
                drop_last=drops_last(n_rows, batch_size, world),
                local_shuffle_buffer_size=cfg.shuffle_buffer_rows or None,
                local_shuffle_seed=shuffle_seed(cfg.seed, epoch, rank, index),
                prefetch_batches=2,
            )

        return batches

    for epoch in range(start_epoch, cfg.epochs + 1):
        _maybe_fail(config, epoch, rank)
        task.on_epoch_start(mods, epoch)
        mods.net.train()
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        progress = Progress(  # rows of every stream: the lead's rows x (rows per step / the lead's rows per step)
            total=lead_rows * sum(x.batch_size for x in specs) // lead.batch_size,
            what="samples",
            interval_s=30.0,
            stream=log,
            label=f"avs train epoch {epoch}/{cfg.epochs}",
        )
        sums: dict[str, float] = {}
        seen = 0.0
        sources = {
            s.name: source(i, s.name, epoch, max(1, int(rows.get(s.name, 0)) // world)) for i, s in enumerate(specs)
        }
        for batch in mixed_batches(sources, specs, steps=steps_per_epoch if world > 1 else None):
            info = StepInfo(epoch=epoch, step=step, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=use_amp):
                out = task.training_step(mods, batch, info)
            if scaler is not None:
                scaler.scale(out.loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                out.loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
            schedule.after_step()
            step += 1
            task.on_after_optimizer_step(mods, step)
            _add(sums, out.sums)
            seen += out.rows
            if rank == 0:
                loss = sums.get("loss")
                progress.update(out.rows, **({"loss": f"{loss / max(seen, 1):.4f}"} if loss is not None else {}))
        schedule.after_epoch()
        train_s = time.perf_counter() - t0

        mods.net.eval()
        for m in mods.aux.values():
            m.eval()
        val: dict[str, float] = {}
        with torch.no_grad():
            for batch in val_shard.iter_torch_batches(batch_size=lead.batch_size * 2, device=device):
                with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=use_amp):
                    _add(val, task.validation_step(mods, batch))
        reduced = all_reduce_sums({**sums, "__seen": seen}, device, world)
        seen = reduced.pop("__seen")
        if task.split_validation:
            val = all_reduce_sums(val, device, world)
        epoch_s = time.perf_counter() - t0
        epoch_seconds.append(epoch_s)
        metrics: dict[str, Any] = {"epoch": epoch, "lr": lr, "step": step}
        metrics.update(task.train_metrics(reduced, seen))
        metrics.update(task.validation_metrics(val))
        metrics.update(
            {
                "train_samples": int(seen),
                "samples_per_s": seen / train_s if train_s > 0 else float("nan"),
                "epoch_s": epoch_s,
                "resumed": epoch == start_epoch and start_epoch > 1,
            }
        )
        history.append(metrics)
        if rank == 0:
            eta = (cfg.epochs - epoch) * (sum(epoch_seconds) / len(epoch_seconds))
            print(_line(epoch, cfg.epochs, metrics, world, eta), file=log, flush=True)
            state = {"epoch": epoch, "step": step, "history": history, "starts": starts}
            extra = {
                "epoch": epoch,
                "metrics": metrics,
                "task": {"name": cfg.task, "params": config["task"], "prediction": task.prediction},
                "run": config["run"],
                "train": config["train"],
                "classes": list(task.classes()),
                **({"data": run.spec["data"]} if run.spec and "data" in run.spec else {}),
            }
            with tempfile.TemporaryDirectory(prefix="avs-ckpt-") as tmp:
                _write_checkpoint(tmp, mods, optimizer, schedule, scaler, task, device, state, extra)
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)
