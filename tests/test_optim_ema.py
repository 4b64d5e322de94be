"""Optimizers and schedules by name; the EMA teacher."""

import math

import pytest
import torch

from avs.train.ema import ema_alpha, ema_copy, update_ema
from avs.train.optim import OptimizerConfig, Schedule, ScheduleConfig, build_optimizer, exp_rampup


def _opt(name="sgd", lr=0.1, **kw):
    return build_optimizer(torch.nn.Linear(3, 2).parameters(), OptimizerConfig(name, lr=lr, **kw))


def _lrs(opt, sched, n, hook):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        getattr(sched, hook)()
    return out


def test_optimizers_by_name():
    assert isinstance(_opt("sgd", nesterov=True), torch.optim.SGD) and _opt("sgd", nesterov=True).defaults["nesterov"]
    assert isinstance(_opt("adam", betas=(0.9, 0.99)), torch.optim.Adam)
    assert _opt("adamw", weight_decay=0.05).defaults["weight_decay"] == 0.05
    with pytest.raises(ValueError, match="optimizer 'lamb'"):
        OptimizerConfig("lamb")


def test_multistep_per_epoch_ignores_steps():
    opt = _opt(lr=1.0)
    sched = Schedule(opt, ScheduleConfig("multistep", interval="epoch", milestones=(2, 4), gamma=0.1))
    for _ in range(5):
        sched.after_step()  # a per-epoch schedule does not move on steps
    assert opt.param_groups[0]["lr"] == 1.0
    assert _lrs(opt, sched, 5, "after_epoch") == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])


def test_onecycle_per_step_peaks_at_the_configured_rate():
    opt = _opt("adamw", lr=0.01)
    sched = Schedule(opt, ScheduleConfig("onecycle", interval="step", total=100, pct_start=0.3))
    lrs = _lrs(opt, sched, 100, "after_step")
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) in (29, 30)
    assert lrs[0] == pytest.approx(0.01 / 25) and lrs[-1] < 1e-5


def test_exp_rampup_is_the_baseline_formula():
    assert exp_rampup(0, 50) == pytest.approx(math.exp(-5))
    assert exp_rampup(25, 50) == pytest.approx(math.exp(-5 * 0.25))
    assert exp_rampup(50, 50) == exp_rampup(80, 50) == 1.0
    opt = _opt("adam", lr=1e-3)
    sched = Schedule(opt, ScheduleConfig("exp_rampup", interval="step", total=10))
    lrs = _lrs(opt, sched, 12, "after_step")
    assert lrs == pytest.approx([1e-3 * exp_rampup(t, 10) for t in range(12)])


def test_cosine_and_schedule_state_round_trip():
    opt = _opt(lr=1.0)
    sched = Schedule(opt, ScheduleConfig("cosine", interval="epoch", total=4, min_lr=0.0))
    lrs = _lrs(opt, sched, 5, "after_epoch")
    assert lrs == pytest.approx([1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 - 0.5 * math.cos(math.pi / 4), 0.0])
    opt2 = _opt(lr=1.0)
    again = Schedule(opt2, ScheduleConfig("cosine", interval="epoch", total=4))
    again.load_state_dict(sched.state_dict())
    assert again.scheduler.last_epoch == sched.scheduler.last_epoch
    with pytest.raises(ValueError, match="needs total"):
        ScheduleConfig("onecycle", interval="step")


def test_ema_follows_the_formula_and_unwraps():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    teacher = ema_copy(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
        student[1].running_mean.fill_(2.0)
    wrapped = torch.nn.DataParallel(student)  # .module like DDP
    alpha = update_ema(teacher, wrapped, step=9, decay=0.999)
    assert alpha == ema_alpha(9, 0.999) == pytest.approx(0.9)
    for t, b, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)
    assert ema_alpha(10_000, 0.999) == 0.999
