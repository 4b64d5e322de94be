"""The one Ray Train entry: ``train_loop_per_worker(config)`` (paper 000 sec. 3 recipe on any registered model).

``config`` (built by ``avs.train.job.run_train``): ``{"cfg": TrainConfig as a dict (resolved), "data":
DataSpec as a dict (with the log-mel statistics), "rows": {"train": n, "val": n}}``; optional
``"fail_once": {"epoch": k, "flag": path}`` makes the worker raise once at the start of epoch k (fault
injection for tests: the file ``flag`` records that it happened).

Per epoch: train (SGD + MultiStepLR + focal loss, paper-000 augmentations, AMP on CUDA), validate (focal
loss, log-loss = mean cross-entropy, accuracy; summed over workers), then every worker calls
``ray.train.report(metrics, checkpoint=...)``; rank 0 alone writes the checkpoint (``model.pt`` through
``avs.models.checkpoint.save_checkpoint`` with optimizer / scheduler state, loadable with
``torch.load(weights_only=True)``, plus ``train_state.json``) and prints progress. A restarted worker group
(``FailureConfig(max_failures)``) or a resumed run finds the last checkpoint with ``ray.train.get_checkpoint()``
and goes on with the next epoch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from typing import Any, TextIO

import torch
import torch.nn.functional as F

CHECKPOINT_FILE = "model.pt"
STATE_FILE = "train_state.json"


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


def _all_reduce(values: list[float], device: torch.device, world_size: int) -> list[float]:
    if world_size <= 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


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


def _restore(model, optimizer, scheduler, scaler) -> tuple[int, list[dict[str, Any]], list[int]]:
    """Load the latest Ray Train checkpoint, if any; ``(next_epoch, history, starts)``."""
    import ray.train

    from avs.models.checkpoint import load_checkpoint

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return 1, [], []
    with ckpt.as_directory() as d:
        load_checkpoint(os.path.join(d, CHECKPOINT_FILE), model, optimizer=optimizer, scheduler=scheduler)
        with open(os.path.join(d, STATE_FILE)) as fh:
            state = json.load(fh)
    if scaler is not None and state.get("grad_scaler"):
        scaler.load_state_dict(state["grad_scaler"])
    return int(state["epoch"]) + 1, list(state["history"]), list(state.get("starts", []))


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    from ray.train import Checkpoint

    from avs.config import from_dict
    from avs.models import create_model, save_checkpoint
    from avs.progress import Progress
    from avs.train.augment import AudioAugmentConfig, augment_audio
    from avs.train.config import TrainConfig
    from avs.train.data import DataSpec, standardize
    from avs.train.recipe import make_loss, make_optimizer, make_scheduler

    quiet_ray_logs()
    cfg = from_dict(TrainConfig, config["cfg"])
    spec = from_dict(DataSpec, config["data"])
    recipe = cfg.recipe()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed * 1000 + rank)
    use_amp = bool(cfg.amp and device.type == "cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None

    model = create_model(cfg.model, dict(cfg.model_params)).to(device)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    loss_fn = make_loss(recipe)
    start_epoch, history, starts = _restore(model, optimizer, scheduler, scaler)
    starts.append(start_epoch)
    model = ray.train.torch.prepare_model(model)  # DDP when world > 1 (gloo on CPU, nccl on CUDA)

    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    rows = config.get("rows", {})
    train_rows = max(1, int(rows.get("train", 0)) // world)
    drop_last = train_rows % recipe.batch_size == 1 and train_rows > 1  # BatchNorm cannot train on 1 row
    audio_aug = AudioAugmentConfig()
    log = _Lines(sys.stdout)
    if rank == 0 and start_epoch > 1:
        print(f"[avs train] resuming from the checkpoint of epoch {start_epoch - 1}", file=log, flush=True)
    epoch_seconds: list[float] = []

    for epoch in range(start_epoch, recipe.epochs + 1):
        _maybe_fail(config, epoch, rank)
        model.train()
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        progress = Progress(
            total=train_rows,
            what="samples",
            interval_s=30.0,
            stream=log,
            label=f"avs train epoch {epoch}/{recipe.epochs}",
        )
        loss_sum = correct = seen = 0.0
        for batch in train_shard.iter_torch_batches(
            batch_size=recipe.batch_size,
            device=device,
            drop_last=drop_last,
            local_shuffle_buffer_size=cfg.shuffle_buffer_rows or None,
            local_shuffle_seed=None,
            prefetch_batches=2,
        ):
            x, y = batch["x"].float(), batch["y"].long()
            if spec.family == "logmel":
                if cfg.augment:
                    x = augment_audio(x, audio_aug)
                x = standardize(x, spec.mean, spec.std)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            n = int(y.shape[0])
            loss_sum += float(loss.detach()) * n
            correct += float((logits.detach().argmax(dim=1) == y).sum())
            seen += n
            if rank == 0:
                progress.update(n, loss=f"{loss_sum / max(seen, 1):.4f}")
        scheduler.step()
        train_s = time.perf_counter() - t0

        model.eval()
        v_loss = v_nll = v_correct = v_seen = 0.0
        with torch.no_grad():
            for batch in val_shard.iter_torch_batches(batch_size=recipe.batch_size * 2, device=device):
                x, y = batch["x"].float(), batch["y"].long()
                if spec.family == "logmel":
                    x = standardize(x, spec.mean, spec.std)
                with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                    logits = model(x)
                logits = logits.float()
                n = int(y.shape[0])
                v_loss += float(loss_fn(logits, y)) * n
                v_nll += float(F.cross_entropy(logits, y, reduction="sum"))
                v_correct += float((logits.argmax(dim=1) == y).sum())
                v_seen += n
        loss_sum, correct, seen, v_loss, v_nll, v_correct, v_seen = _all_reduce(
            [loss_sum, correct, seen, v_loss, v_nll, v_correct, v_seen], device, world
        )
        epoch_s = time.perf_counter() - t0
        epoch_seconds.append(epoch_s)
        nan = float("nan")
        metrics = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": loss_sum / seen if seen else nan,
            "train_accuracy": correct / seen if seen else nan,
            "val_loss": v_loss / v_seen if v_seen else nan,
            "val_log_loss": v_nll / v_seen if v_seen else nan,
            "val_accuracy": v_correct / v_seen if v_seen else 0.0,
            "train_samples": int(seen),
            "val_samples": int(v_seen),
            "samples_per_s": seen / train_s if train_s > 0 else nan,
            "epoch_s": epoch_s,
            "resumed": epoch == start_epoch and start_epoch > 1,
        }
        history.append(metrics)
        if rank == 0:
            eta = (recipe.epochs - epoch) * (sum(epoch_seconds) / len(epoch_seconds))
            print(
                f"[avs train] epoch {epoch}/{recipe.epochs}: train loss {metrics['train_loss']:.4f} "
                f"acc {metrics['train_accuracy']:.3f} | val loss {metrics['val_loss']:.4f} "
                f"log-loss {metrics['val_log_loss']:.4f} acc {metrics['val_accuracy']:.3f} | lr {lr:.3g} | "
                f"{metrics['samples_per_s']:.1f} samples/s ({world} worker(s)), epoch {_fmt_seconds(epoch_s)}, "
                f"ETA {_fmt_seconds(eta)}",
                file=log,
                flush=True,
            )
            with tempfile.TemporaryDirectory(prefix="avs-ckpt-") as tmp:
                state = {
                    "epoch": epoch,
                    "history": history,
                    "starts": starts,
                    "grad_scaler": scaler.state_dict() if scaler is not None else None,
                }
                extra = {
                    "epoch": epoch,
                    "metrics": metrics,
                    "data": config["data"],
                    "train": config["cfg"],
                    "classes": list(spec.classes),
                }
                save_checkpoint(
                    os.path.join(tmp, CHECKPOINT_FILE), model, extra, optimizer=optimizer, scheduler=scheduler
                )
                with open(os.path.join(tmp, STATE_FILE), "w") as fh:
                    json.dump(state, fh, indent=1)
                ray.train.report(metrics, checkpoint=Checkpoint.from_directory(tmp))
        else:
            ray.train.report(metrics)
