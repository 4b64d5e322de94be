"""Part writers: whole clips gathered into parts up to a row / byte target, names sorting past 99,999."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from avs.data.manifest import CARRIED_COLUMNS
from avs.shards.part_writer import PartWriter
from avs.shards.state import PART_RE, next_part_index
from avs.shards.storage import Storage
from avs.shards.writer import FeatureSink, clip_tables, part_name


def _sink(name="feat", shape=(4,)):
    return FeatureSink(name, shape, {b"avs.shape": b"[4]"})


def _tables(sinks, clips, rows_per_clip=3):
    """Whole clips: ``rows_per_clip`` rows each, feature values = clip number."""
    n = len(clips) * rows_per_clip
    keys = {
        "clip_id": np.asarray([c for c in clips for _ in range(rows_per_clip)], dtype=object),
        "segment": np.tile(np.arange(rows_per_clip, dtype=np.int32), len(clips)),
        "start_s": np.zeros(n),
        "end_s": np.ones(n),
    }
    values = {s.name: np.repeat([float(c[1:]) for c in clips], rows_per_clip)[:, None] * np.ones((1, 4)) for s in sinks}
    carried = pa.table({c: pa.array([None] * n, pa.string()) for c in CARRIED_COLUMNS})
    return clip_tables(sinks, keys, values, carried)


def _writer(tmp_path, sinks, **kw):
    args = {"first_part": 0, "stride": 1, "rows_per_part": 10, "bytes_per_part": 10**9, **kw}
    return PartWriter(str(tmp_path), sinks, "lz4", **args)


def test_parts_hold_many_whole_clips_up_to_the_row_target(tmp_path):
    sinks = (_sink("a"), _sink("b"))
    w = _writer(tmp_path, sinks, rows_per_part=10)
    clips = [f"c{i}" for i in range(11)]
    for k in range(0, 11, 2):  # blocks of 2 clips, as the feature workers send them
        w.append(_tables(sinks, clips[k : k + 2]))
    report = w.close()
    assert sorted(report["committed"]) == sorted(clips) and not report["failed"]
    for name in ("a", "b"):
        parts = sorted((tmp_path / name).glob("part-*.parquet"))
        assert len(parts) == len(report["parts"]) == 4  # 3 clips (9 rows) per part: a 4th clip would pass 10
        seen = []
        for p in parts:
            t = pq.read_table(p)
            assert t.num_rows <= 10
            ids = t.column("clip_id").to_pylist()
            assert all(ids.count(c) == 3 for c in set(ids))  # whole clips only
            seen += sorted(set(ids))
        assert sorted(seen) == sorted(clips)
    assert list((tmp_path / "a").glob(".*.tmp")) == []


def test_byte_target_and_a_clip_larger_than_a_part(tmp_path):
    sinks = (_sink(),)
    row_bytes = _tables(sinks, ["c0"])["feat"].nbytes / 3
    w = _writer(tmp_path, sinks, rows_per_part=1000, bytes_per_part=int(row_bytes * 7))  # two clips per part
    w.append(_tables(sinks, [f"c{i}" for i in range(5)]))
    assert w.close()["parts"] == [0, 1, 2]
    clips_per_part = [
        len(set(pq.read_table(p).column("clip_id").to_pylist())) for p in sorted(tmp_path.glob("feat/p*"))
    ]
    assert clips_per_part == [2, 2, 1]
    big = PartWriter(str(tmp_path / "big"), sinks, "lz4", 0, 1, 2, 10**9)  # 3-row clips, 2-row target
    big.append(_tables(sinks, ["c0", "c1"]))
    assert big.close()["parts"] == [0, 1]  # one clip a part; a clip is never split


def test_a_retried_block_is_not_written_twice(tmp_path):
    sinks = (_sink(),)
    w = _writer(tmp_path, sinks)
    w.append(_tables(sinks, ["c1", "c2"]))
    w.append(_tables(sinks, ["c1", "c2"]))  # Ray Data ran the block again
    w.append(_tables(sinks, ["c2", "c3"]))
    w.close()
    ids = pq.read_table(tmp_path / "feat").column("clip_id").to_pylist()
    assert sorted(ids) == ["c1"] * 3 + ["c2"] * 3 + ["c3"] * 3


def test_part_names_sort_in_part_order_past_99999(tmp_path):
    names = [part_name(i) for i in (0, 9, 99_998, 99_999, 100_000, 1_000_000, 12_345_678)]
    assert sorted(names) == names and all(PART_RE.match(n) for n in names)
    sinks = (_sink(),)
    w = PartWriter(str(tmp_path), sinks, "lz4", 99_998, 1, 3, 10**9)  # parts 99998, 99999, 100000
    for c in ("c1", "c2", "c3"):
        w.append(_tables(sinks, [c]))
    w.close()
    files = sorted(p.name for p in (tmp_path / "feat").glob("part-*.parquet"))
    assert files == [part_name(99_998), part_name(99_999), part_name(100_000)]
    assert pq.read_table(tmp_path / "feat").column("clip_id").to_pylist() == ["c1"] * 3 + ["c2"] * 3 + ["c3"] * 3
    assert next_part_index(Storage(str(tmp_path)), ["feat"]) == 100_001


def test_stride_keeps_writers_apart(tmp_path):
    sinks = (_sink(),)
    ws = [PartWriter(str(tmp_path), sinks, "lz4", 5 + i, 2, 3, 10**9) for i in range(2)]
    for k in range(6):
        ws[k % 2].append(_tables(sinks, [f"c{k}"]))
    parts = sorted(p for w in ws for p in w.close()["parts"])
    assert parts == [5, 6, 7, 8, 9, 10]
