"""Named streams combined into one batch per step; shorter streams start again, never cached."""

import numpy as np
import pytest
import torch

from avs.train.streams import StreamSpec, combine, mixed_batches


def _source(values, calls=None):
    def make(batch_size):
        if calls is not None:
            calls.append(batch_size)
        for i in range(0, len(values) - batch_size + 1, batch_size):  # drop_last
            yield {"x": np.asarray(values[i : i + batch_size])}

    return make


def test_lead_stream_sets_the_epoch_and_others_restart():
    calls = []
    sources = {"strong": _source(list(range(4)), calls), "unlabeled": _source(list(range(100, 112)))}
    specs = (StreamSpec("strong", 2), StreamSpec("unlabeled", 4, lead=True))
    steps = list(mixed_batches(sources, specs))
    assert len(steps) == 3  # 12 unlabeled rows / 4
    assert [s["strong"]["x"].tolist() for s in steps] == [[0, 1], [2, 3], [0, 1]]  # started again
    assert calls == [2, 2]  # a fresh pass of the source, not a cache
    assert [s["unlabeled"]["x"].tolist() for s in steps][-1] == [108, 109, 110, 111]


def test_fixed_steps_and_errors():
    sources = {"a": _source([1, 2, 3]), "b": _source([7])}
    got = list(mixed_batches(sources, (StreamSpec("a", 1), StreamSpec("b", 1)), steps=5))
    assert [g["a"]["x"].item() for g in got] == [1, 2, 3, 1, 2] and all(g["b"]["x"].item() == 7 for g in got)
    with pytest.raises(ValueError, match="no batch of 2 rows"):
        list(mixed_batches(sources, (StreamSpec("a", 1, lead=True), StreamSpec("b", 2))))
    with pytest.raises(ValueError, match="no source"):
        list(mixed_batches(sources, (StreamSpec("c", 1),)))
    with pytest.raises(ValueError, match="only one stream"):
        list(mixed_batches(sources, (StreamSpec("a", 1, lead=True), StreamSpec("b", 1, lead=True))))


def test_combine_numpy_and_torch():
    parts = {"strong": {"x": np.zeros((2, 3)), "y": np.ones(2)}, "weak": {"x": np.ones((4, 3)), "y": np.zeros(4)}}
    batch, rows = combine(parts, ("x", "y"))
    assert batch["x"].shape == (6, 3) and rows == {"strong": slice(0, 2), "weak": slice(2, 6)}
    assert batch["y"][rows["strong"]].tolist() == [1, 1]
    tparts = {k: {"x": torch.as_tensor(v["x"])} for k, v in parts.items()}
    tb, _ = combine(tparts, ("x",))
    assert isinstance(tb["x"], torch.Tensor) and tb["x"].shape == (6, 3)


@pytest.mark.ray
def test_streams_over_real_ray_datasets(ray_local):
    import ray.data

    strong = ray.data.from_items([{"x": float(i)} for i in range(6)])
    unlabeled = ray.data.from_items([{"x": 100.0 + i} for i in range(24)])
    sources = {
        "strong": lambda bs: strong.iter_batches(batch_size=bs, drop_last=True, batch_format="numpy"),
        "unlabeled": lambda bs: unlabeled.iter_batches(batch_size=bs, drop_last=True, batch_format="numpy"),
    }
    steps = list(mixed_batches(sources, (StreamSpec("strong", 4), StreamSpec("unlabeled", 12, lead=True))))
    assert len(steps) == 2
    batch, rows = combine(steps[1], ("x",))
    assert len(batch["x"]) == 16 and (batch["x"][rows["unlabeled"]] >= 100).all()
    assert (batch["x"][rows["strong"]] < 6).all()
