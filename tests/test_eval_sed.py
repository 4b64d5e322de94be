"""SED post-processing, DCASE files and metrics (paper 003): against hand-made answers, dcase_util, sed_eval and
sed_scores_eval called directly on the same inputs; the `avs evaluate` CLI on SED inputs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import ndimage

from avs.cli import main as avs_main
from avs.eval.report import plot_sed_clip
from avs.eval.sed import (
    FRAME_SCORES_LAYOUT,
    PSDS_SCENARIOS,
    FrameScores,
    evaluate_sed,
    event_based_f1,
    frame_scores_from_table,
    operating_point_dataframes,
    psds,
    score_dataframes,
    segment_based_f1,
    snapped_dataframes,
)
from avs.eval.sed_post import (
    audio_id,
    binarize,
    contiguous_regions,
    decode_events,
    frame_timestamps,
    median_filter,
    median_window_frames,
    operating_thresholds,
    read_durations_tsv,
    read_events_tsv,
    snap_to_thresholds,
    threshold_files,
    write_durations_tsv,
    write_events_tsv,
)

with warnings.catch_warnings():  # dcase_util imports pkg_resources, which warns
    warnings.simplefilter("ignore")
    import sed_eval
    from dcase_util.data import DecisionEncoder
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.io import read_audio_durations, read_ground_truth_events
    from sed_scores_eval.base_modules.scores import create_score_dataframe

CLASSES = ("dog", "bell", "speech")
HOP = 0.1  # s per output frame in the synthetic cases (the CRNN's is 0.06375)
PNG = b"\x89PNG\r\n\x1a\n"


def _r(events):
    """Events with times rounded to 1e-9 s (3 x 0.1 is 0.30000000000000004)."""
    return [(round(float(a), 9), round(float(b), 9), c) for a, b, c in events]


# ------------------------------------------------------------------------------------- post-processing
def test_median_window_frames_rounds_down_as_the_baseline():
    assert median_window_frames(0.45, 255 * 4 / 16000) == 7  # paper 003: 0.45 s at the CRNN's 63.75 ms
    assert max(int(0.45 * 16000 / 255 / 4), 1) == 7  # the baseline's formula (frames per second of output)
    assert median_window_frames(0.3, 0.1) == 3  # not int(2.9999...) = 2
    assert median_window_frames(0.25, 0.1) == 2  # rounded down
    assert median_window_frames(0.0, 0.1) == median_window_frames(0.05, 0.1) == 1  # at least 1
    with pytest.raises(ValueError):
        median_window_frames(0.45, 0.0)


def test_operating_thresholds_are_the_dcase2020_grid():
    t = operating_thresholds()
    assert len(t) == 50 and t[0] == 0.01 and t[-1] == 0.99 and 0.51 in t and 0.5 not in t
    np.testing.assert_allclose(t, np.arange(1 / 100, 1, 1 / 50), atol=1e-12)  # the baseline's np.arange
    np.testing.assert_allclose(t, np.linspace(0.01, 0.99, 50), atol=1e-12)  # paper 003: "linearly distributed"


def test_decode_events_on_hand_made_scores():
    dog = [0.2, 0.6, 0.7, 0.4, 0.8, 0.9, 0.9, 0.1, 0.1, 0.6]
    bell = [0.0, 0.0, 0.5, 0.5, 0.5, 0.49, 0.0, 0.0, 0.0, 0.0]  # 0.5 >= 0.5 is active (dcase_util's rule)
    speech = [0.9] * 10
    s = np.stack([dog, bell, speech], axis=1)  # (frames, classes)
    # threshold only: frame t spans [t hop, (t + 1) hop), end exclusive; class by class, in time order
    assert _r(decode_events(s, CLASSES, HOP, 0.5, 1)) == _r(
        [(0.1, 0.3, "dog"), (0.4, 0.7, "dog"), (0.9, 1.0, "dog"), (0.2, 0.5, "bell"), (0.0, 1.0, "speech")]
    )
    # a 3-frame median (scipy, mode "reflect"): the gap at frame 3 closes, the last frame survives (reflected),
    # the 3-frame bell stays
    assert _r(decode_events(s, CLASSES, HOP, 0.5, 3)) == _r(
        [(0.1, 0.7, "dog"), (0.9, 1.0, "dog"), (0.2, 0.5, "bell"), (0.0, 1.0, "speech")]
    )
    # 5 frames: the bell (3 frames) survives; dog's first frame turns on (reflected 1, 0 | 0, 1, 1: median 1),
    # its gap at frame 1 opens (0, 0, 1, 1, 0), the two events merge and the last frame goes
    assert _r(decode_events(s, CLASSES, HOP, 0.5, 5)) == _r(
        [(0.0, 0.1, "dog"), (0.2, 0.9, "dog"), (0.2, 0.5, "bell"), (0.0, 1.0, "speech")]
    )
    # per-class thresholds (a mapping: unnamed classes keep 0.5) and clipping to the clip's length
    assert _r(decode_events(s, CLASSES, HOP, {"dog": 0.85, "speech": 0.95}, 1, duration_s=0.65)) == _r(
        [(0.5, 0.65, "dog"), (0.2, 0.5, "bell")]
    )
    assert _r(decode_events(s, CLASSES, HOP, [0.85, 0.51, 0.95], 1)) == _r([(0.5, 0.7, "dog")])
    assert decode_events(np.zeros((0, 3)), CLASSES, HOP) == []
    with pytest.raises(ValueError, match="one threshold per class"):
        decode_events(s, CLASSES, HOP, [0.5, 0.5])


def test_post_processing_is_the_baseline_recipe_on_random_scores():
    """binarise with >= (dcase_util), scipy median filter (w, 1) on the binary matrix, find_contiguous_regions,
    frames x hop: the baseline's get_predictions + decode_strong, literally."""
    rng = np.random.default_rng(0)
    s = rng.uniform(size=(157, len(CLASSES)))
    for w in (1, 2, 7):
        active = ndimage.median_filter((s >= 0.5).astype(int), (w, 1))
        want = []
        for j, c in enumerate(CLASSES):
            for on, off in DecisionEncoder().find_contiguous_regions(active[:, j]):
                want.append((on * 0.06375, off * 0.06375, c))
        assert _r(decode_events(s, CLASSES, 0.06375, 0.5, w)) == _r(want)
        np.testing.assert_array_equal(median_filter(binarize(s, 0.5), w), active.astype(bool))
        # the median filter commutes with thresholding: filtered scores >= t == filtered (scores >= t)
        for t in (0.13, 0.5, 0.77):
            np.testing.assert_array_equal(median_filter(s, w) >= t, median_filter(s >= t, w))
    np.testing.assert_array_equal(contiguous_regions(np.array([1, 1, 0, 1], bool)), [[0, 2], [3, 4]])
    np.testing.assert_array_equal(contiguous_regions(np.zeros(3, bool)), np.zeros((0, 2)))


def test_frame_timestamps_and_snapping():
    ts = frame_timestamps(157, 0.06375, 10.0)  # the CRNN's 157 frames reach 10.009 s: the last ends at 10 s
    assert len(ts) == 158 and ts[-1] == 10.0 and ts[-2] == pytest.approx(156 * 0.06375)
    assert len(frame_timestamps(160, 0.06375, 10.0)) == 158  # frames starting after the end are left out
    assert len(frame_timestamps(10, 0.1)) == 11
    grid = operating_thresholds()
    snapped = snap_to_thresholds(np.array([0.0, 0.005, 0.01, 0.5, 0.509, 0.51, 1.0]), grid)
    np.testing.assert_array_equal(snapped, [-np.inf, -np.inf, 0.01, 0.49, 0.49, 0.51, 0.99])
    s = np.random.default_rng(1).uniform(size=(40, 3))
    for t in grid[::7]:  # thresholding the snapped scores at an operating point = thresholding the scores
        np.testing.assert_array_equal(snap_to_thresholds(s, grid) >= t, s >= t)


# ----------------------------------------------------------------------------------------------- TSV files
def test_tsv_round_trip_and_sed_scores_eval_reads_them(tmp_path):
    events = {
        "Y1": [(0.5, 1.25, "dog"), (0.1, 3.0, "speech")],
        "Y2": [],  # a clip without events: one row with empty onset / offset / label
        "Y3.wav": [(2.0, 2.5, "bell")],
    }
    path = tmp_path / "truth.tsv"
    assert write_events_tsv(path, events) == 3
    lines = path.read_text().splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    assert lines[1:] == ["Y1.wav\t0.1\t3\tspeech", "Y1.wav\t0.5\t1.25\tdog", "Y2.wav\t\t\t", "Y3.wav\t2\t2.5\tbell"]
    back = read_events_tsv(path)
    assert back == {"Y1": [(0.1, 3.0, "speech"), (0.5, 1.25, "dog")], "Y2": [], "Y3": [(2.0, 2.5, "bell")]}
    assert read_events_tsv(path, key="filename").keys() == {"Y1.wav", "Y2.wav", "Y3.wav"}
    sse = read_ground_truth_events(path)  # sed_scores_eval's reader: the same clips and events
    assert {k: sorted(map(tuple, v)) for k, v in sse.items()} == {k: sorted(v) for k, v in back.items()}
    dur = tmp_path / "durations.tsv"
    write_durations_tsv(dur, {"Y1": 10.0, "Y2": 9.5, "Y3.wav": 10.0})
    assert read_durations_tsv(dur) == read_audio_durations(dur) == {"Y1": 10.0, "Y2": 9.5, "Y3": 10.0}
    assert audio_id("audio/validation/Y1.wav") == "Y1" and audio_id("Y1") == "Y1"
    desed = "Y--4gqARaEJE_0.000_7.000"  # DESED's ids have dots: only a media extension is dropped
    assert audio_id(f"{desed}.wav") == audio_id(f"validation/{desed}") == desed
    write_events_tsv(tmp_path / "desed.tsv", {f"validation/{desed}": [(0.0, 1.0, "dog")]})
    assert read_events_tsv(tmp_path / "desed.tsv") == {desed: [(0.0, 1.0, "dog")]}
    assert (tmp_path / "desed.tsv").read_text().splitlines()[1] == f"{desed}.wav\t0\t1\tdog"
    bad = tmp_path / "bad.tsv"
    bad.write_text("filename\tonset\tevent_label\nY1.wav\t0\tdog\n")
    with pytest.raises(ValueError, match="offset"):
        read_events_tsv(bad)
    (tmp_path / "ops").mkdir()
    for name in ("det_th_0.01.tsv", "det_th_0.510.tsv", "notes.txt", "th_0.99.tsv"):
        (tmp_path / "ops" / name).write_text("filename\tonset\toffset\tevent_label\n")
    assert list(threshold_files(tmp_path / "ops")) == [0.01, 0.51, 0.99]


# ------------------------------------------------------------------------------------ synthetic systems
def _case(n_clips=8, seed=0, duration=10.0):
    """Truth, durations and frame scores (hop 0.1 s) that follow the truth loosely."""
    rng = np.random.default_rng(seed)
    n = int(round(duration / HOP))
    truth, durations, scores = {}, {}, {}
    for i in range(n_clips):
        clip = f"Y{i:02d}"
        durations[clip] = duration
        s = rng.uniform(0.0, 0.6, size=(n, len(CLASSES)))
        events = []
        for j, c in enumerate(CLASSES):
            if rng.uniform() < 0.7 or i < 2:  # every class has truth events
                on = round(float(rng.uniform(0, duration - 1.5)), 2)
                off = round(on + float(rng.uniform(0.4, 1.4)), 2)
                events.append((on, off, c))
                a, b = int(on / HOP), int(np.ceil(off / HOP))
                s[a:b, j] += rng.uniform(0.0, 0.5, size=b - a)
        truth[clip] = sorted(events)
        scores[clip] = np.clip(s, 0.0, 1.0)
    return truth, durations, scores


def _sed_eval_direct(metric_cls, truth, detected, files, **kwargs):
    metric = metric_cls(event_label_list=list(CLASSES), **kwargs)
    for f in files:
        ref = [{"filename": f, "onset": a, "offset": b, "event_label": c} for a, b, c in truth.get(f, [])]
        est = [{"filename": f, "onset": a, "offset": b, "event_label": c} for a, b, c in detected.get(f, [])]
        if metric_cls is sed_eval.sound_event.SegmentBasedMetrics:
            metric.evaluate(ref, est, evaluated_length_seconds=10.0)
        else:
            metric.evaluate(ref, est)
    return metric


def test_event_and_segment_f1_equal_sed_eval_called_directly():
    truth, durations, scores = _case()
    detected = {f: decode_events(s, CLASSES, HOP, 0.5, 3) for f, s in scores.items()}
    files = sorted(durations)
    got = event_based_f1(detected, truth, CLASSES, files=files)
    ref = _sed_eval_direct(
        sed_eval.sound_event.EventBasedMetrics,
        truth,
        detected,
        files,
        t_collar=0.2,
        percentage_of_length=0.2,
        empty_system_output_handling="zero_score",
    )
    assert got["macro"] == pytest.approx(ref.results_class_wise_average_metrics()["f_measure"]["f_measure"])
    assert got["micro"] == pytest.approx(ref.results_overall_metrics()["f_measure"]["f_measure"])
    for c in CLASSES:
        assert got["per_class"][c] == pytest.approx(ref.results_class_wise_metrics()[c]["f_measure"]["f_measure"])
    assert 0.0 < got["macro"] < 1.0 and got["n_files"] == len(files)
    # a 0.5 s collar (sed_eval's default) gives other numbers: the setting matters and is ours
    loose = event_based_f1(detected, truth, CLASSES, files=files, percentage_of_length=0.5, t_collar=0.5)
    assert loose["micro"] != pytest.approx(got["micro"])

    seg = segment_based_f1(detected, truth, CLASSES, files=files, durations=durations)
    ref = _sed_eval_direct(sed_eval.sound_event.SegmentBasedMetrics, truth, detected, files, time_resolution=1.0)
    assert seg["macro"] == pytest.approx(ref.results_class_wise_average_metrics()["f_measure"]["f_measure"])
    assert seg["micro"] == pytest.approx(ref.results_overall_metrics()["f_measure"]["f_measure"])
    # perfect detections score 1; detections of a clip outside `files` are refused
    assert event_based_f1(truth, truth, CLASSES)["macro"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="outside the evaluated files"):
        event_based_f1({"Zz": [(0.0, 1.0, "dog")]}, truth, CLASSES, files=files)
    with pytest.raises(ValueError, match="not among the classes"):
        event_based_f1({"Y00": [(0.0, 1.0, "cat")]}, truth, CLASSES)


def test_psds_equals_sed_scores_eval_called_directly():
    truth, durations, scores = _case()
    dfs = score_dataframes(scores, CLASSES, HOP, durations)
    gt = {k: [list(e) for e in v] for k, v in truth.items()}
    for name, sc in PSDS_SCENARIOS.items():
        ref_dfs = {k: create_score_dataframe(v, np.arange(len(v) + 1) * HOP, list(CLASSES)) for k, v in scores.items()}
        want, want_pc, *_ = intersection_based.psds(
            scores=ref_dfs,
            ground_truth=gt,
            audio_durations=durations,
            dtc_threshold=sc.dtc,
            gtc_threshold=sc.gtc,
            cttc_threshold=sc.cttc,
            alpha_ct=sc.alpha_ct,
            alpha_st=sc.alpha_st,
            max_efpr=sc.max_efpr,
        )
        got = psds(dfs, truth, durations, sc)
        assert got["value"] == pytest.approx(want, abs=1e-12), name
        assert got["per_class"] == pytest.approx(want_pc, abs=1e-12)
        assert 0.0 <= got["value"] <= 1.0
        if name == "psds":
            assert 0.0 < got["value"] < 1.0  # not a trivial case
        tpr, efpr = got["roc"]
        assert efpr[-1] == sc.max_efpr and np.all(np.diff(efpr) >= 0)
    assert PSDS_SCENARIOS["psds"].kwargs() == {  # paper 003 sec. 4.2
        "dtc_threshold": 0.5,
        "gtc_threshold": 0.5,
        "cttc_threshold": 0.3,
        "alpha_ct": 1.0,
        "alpha_st": 0.0,
        "max_efpr": 100.0,
    }
    assert PSDS_SCENARIOS["psds1"].kwargs()["cttc_threshold"] is None


def _write_operating_points(folder, scores, durations, thresholds, median=1):
    folder.mkdir(parents=True, exist_ok=True)
    for t in thresholds:
        events = {f: decode_events(s, CLASSES, HOP, t, median, durations[f]) for f, s in scores.items()}
        write_events_tsv(folder / f"detections_th_{t:.2f}.tsv", events)


def test_psds_on_operating_points_and_threshold_free(tmp_path):
    truth, durations, scores = _case(seed=2)
    grid = operating_thresholds()
    # (1) detections at the 50 operating points, written as psds_eval's folder, read back, rebuilt as scores
    _write_operating_points(tmp_path / "ops", scores, durations, grid, median=3)
    ops = {t: read_events_tsv(p) for t, p in threshold_files(tmp_path / "ops").items()}
    assert len(ops) == 50
    rebuilt = operating_point_dataframes(ops, CLASSES, durations)
    for t in (0.01, 0.25, 0.51, 0.99):  # thresholding the rebuilt scores gives back each file's detections
        cut = {f: _r(v) for f, v in _events_of(rebuilt, t).items()}
        assert cut == {f: _r(sorted(v)) for f, v in ops[round(t, 2)].items()}
    # (2) the same system as frame scores: median-filtered, snapped to the grid -> the same PSDS as (1)
    filtered = {f: median_filter(s, 3) for f, s in scores.items()}
    dfs = score_dataframes(filtered, CLASSES, HOP, durations)
    for name, sc in PSDS_SCENARIOS.items():
        on_ops = psds(rebuilt, truth, durations, sc)["value"]
        snapped = psds(snapped_dataframes(dfs, grid), truth, durations, sc)["value"]
        assert on_ops == pytest.approx(snapped, abs=1e-9), name
    free = psds(dfs, truth, durations)["value"]
    on_ops = psds(rebuilt, truth, durations)["value"]
    assert 0.0 < on_ops < free < 1.0  # threshold-free sees thresholds between the operating points
    # (3) evaluate_sed reports both for frame scores, and which is which
    fs = evaluate_sed(truth, durations, frame_scores=FrameScores(scores, CLASSES, HOP), median_frames=3).metrics
    op = evaluate_sed(truth, durations, operating_points=ops).metrics
    assert fs["psds_method"] == "threshold-free" and op["psds_method"] == "operating points"
    assert fs["psds"] == pytest.approx(psds(dfs, truth, durations)["value"])
    assert fs["psds_operating_points"]["psds"] == pytest.approx(op["psds"], abs=1e-9)
    assert fs["psds_operating_points"]["n_thresholds"] == 50
    for key in ("psds1", "psds2"):
        assert fs["psds_operating_points"][key] == pytest.approx(op[key], abs=1e-9)
    # F1 of a folder: the smallest threshold >= 0.5 (0.51), i.e. frame scores decoded at 0.5 on the snapped grid
    assert op["f1_from"] == "operating point 0.51 of 50"
    at_051 = evaluate_sed(
        truth, durations, frame_scores=FrameScores(scores, CLASSES, HOP), threshold=0.51, median_frames=3
    )
    assert op["event_f1_macro"] == pytest.approx(at_051.metrics["event_f1_macro"])


def _events_of(dfs, t):
    out = {}
    for clip, df in dfs.items():
        on, off = df["onset"].to_numpy(), df["offset"].to_numpy()
        events = []
        for c in CLASSES:
            for a, b in contiguous_regions(df[c].to_numpy() >= t):
                events.append((on[a], off[b - 1], c))
        out[clip] = sorted(events)
    return out


def test_operating_points_edge_cases():
    truth, durations, scores = _case(n_clips=3, seed=4)
    grid = operating_thresholds(5)
    ops = {t: {f: decode_events(s, CLASSES, HOP, t, 1) for f, s in scores.items()} for t in grid}
    # a class that no operating point detects: TPR 0 everywhere, PSDS still computed (sed_scores_eval alone
    # would fail on a class whose scores are all -inf)
    quiet = {t: {f: [e for e in ev if e[2] != "bell"] for f, ev in d.items()} for t, d in ops.items()}
    res = evaluate_sed(truth, durations, operating_points=quiet).metrics
    assert res["psds"] is not None and res["per_class"]["bell"]["psds"] == 0.0
    assert res["per_class"]["bell"]["event_f1"] == 0.0
    # detections that are not nested (more at a higher threshold): no PSDS, a reason, F1 still there
    broken = dict(ops)
    broken[grid[-1]] = {f: [(0.0, 5.0, "dog")] for f in scores}
    res = evaluate_sed(truth, durations, operating_points=broken).metrics
    assert res["psds"] is None and res["psds_method"] is None and "not nested" in res["psds_note"]
    assert res["event_f1_macro"] is not None
    # a single detections TSV: F1, no PSDS
    det = evaluate_sed(truth, durations, detections=ops[0.5]).metrics
    assert det["psds"] is None and "one operating point" in det["psds_note"]
    # a class without truth events is left out of PSDS and named
    no_speech = {f: [e for e in ev if e[2] != "speech"] for f, ev in truth.items()}
    m = evaluate_sed(no_speech, durations, frame_scores=FrameScores(scores, CLASSES, HOP), n_operating_points=0)
    assert m.metrics["psds_classes_without_truth"] == ["speech"] and "psds_operating_points" not in m.metrics
    assert m.metrics["per_class"]["speech"]["event_f1"] is None  # sed_eval: no truth, no F1


# ------------------------------------------------------------------------------------------ the CLI
def _frame_scores_table(scores, classes, hop):
    rows = {"clip_id": [], "segment": [], "start_s": [], "end_s": [], "filename": []}
    cols = {c: [] for c in classes}
    for clip, s in scores.items():
        for t in range(len(s)):
            rows["clip_id"].append(f"validation/{clip}")
            rows["segment"].append(t)
            rows["start_s"].append(t * hop)
            rows["end_s"].append((t + 1) * hop)
            rows["filename"].append(f"{clip}.wav")
            for j, c in enumerate(classes):
                cols[c].append(float(s[t, j]))
    table = pa.table(
        {
            "clip_id": pa.array(rows["clip_id"], pa.string()),
            "segment": pa.array(rows["segment"], pa.int32()),
            "start_s": pa.array(rows["start_s"], pa.float64()),
            "end_s": pa.array(rows["end_s"], pa.float64()),
            "filename": pa.array(rows["filename"], pa.string()),
            **{c: pa.array(v, pa.float64()) for c, v in cols.items()},
        }
    )
    meta = {b"avs.kind": b"frame_scores", b"avs.hop_s": json.dumps(hop).encode(), b"avs.classes": json.dumps(classes)}
    return table.replace_schema_metadata({k: v if isinstance(v, bytes) else v.encode() for k, v in meta.items()})


def test_frame_scores_layout_reads_back():
    truth, durations, scores = _case(n_clips=2)
    table = _frame_scores_table(scores, list(CLASSES), HOP)
    fs = frame_scores_from_table(table.take(np.random.default_rng(0).permutation(table.num_rows)))  # any row order
    assert fs.classes == CLASSES and fs.hop_s == HOP and set(fs.scores) == set(scores)
    for k in scores:
        np.testing.assert_array_equal(fs.scores[k], scores[k])
    assert fs.filenames == {k: f"{k}.wav" for k in scores}
    # without a filename column (as avs predict writes today): the audio id is clip_id's last part
    no_names = frame_scores_from_table(table.drop_columns(["filename"]))
    assert set(no_names.scores) == set(scores) and no_names.filenames == fs.filenames
    assert "avs.hop_s" in FRAME_SCORES_LAYOUT and "segment" in FRAME_SCORES_LAYOUT
    with pytest.raises(ValueError, match="avs.hop_s"):
        frame_scores_from_table(table.replace_schema_metadata({}))


def test_evaluate_cli_on_truth_detections_operating_points_and_frame_scores(tmp_path, capsys):
    truth, durations, scores = _case(n_clips=5, seed=5)
    write_events_tsv(tmp_path / "truth.tsv", truth)
    write_durations_tsv(tmp_path / "durations.tsv", durations)
    write_events_tsv(tmp_path / "det.tsv", {f: decode_events(s, CLASSES, HOP, 0.5, 3) for f, s in scores.items()})
    _write_operating_points(tmp_path / "ops", scores, durations, operating_thresholds(10), median=3)
    (tmp_path / "pred").mkdir()
    pq.write_table(_frame_scores_table(scores, list(CLASSES), HOP), tmp_path / "pred" / "predictions.parquet")
    out = tmp_path / "report"
    args = ["evaluate", "--truth", str(tmp_path / "truth.tsv"), "--durations", str(tmp_path / "durations.tsv")]
    inputs = [f"DET={tmp_path / 'det.tsv'}", f"OPS={tmp_path / 'ops'}", f"CRNN={tmp_path / 'pred'}"]
    rc = avs_main([*args, *inputs, "--out", str(out), "--median-s", "0.3", "--operating-points", "50"])
    assert rc == 0
    assert "| CRNN |" in capsys.readouterr().out  # the side-by-side table is printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["sed_table"][0]["system"] == "DET" and len(m["sed_table"]) == 3
    keys = ("event_f1_macro", "event_f1_micro", "segment_f1_macro", "segment_f1_micro")
    for name in ("DET", "OPS", "CRNN"):
        s = m["systems"][name]
        assert s["task"] == "sed" and all(0.0 <= s[k] <= 1.0 for k in keys), name
        assert json.loads((out / name / "metrics.json").read_text())["event_f1_macro"] == s["event_f1_macro"]
        assert (out / name / "per_class.csv").read_text().startswith("class,n_truth,n_detected,event_f1")
        assert "| dog |" in (out / name / "per_class.md").read_text()
        assert read_events_tsv(out / name / "detections.tsv").keys() <= durations.keys()
    det, ops, crnn = (m["systems"][n] for n in ("DET", "OPS", "CRNN"))
    assert det["input"] == "detections" and det["psds"] is None and det["psds_method"] is None
    assert ops["psds_method"] == "operating points" and ops["f1_from"] == "operating point 0.55 of 10"
    assert crnn["input"] == "frame_scores" and crnn["psds_method"] == "threshold-free"
    assert crnn["settings"]["median_frames"] == 3 and crnn["psds_operating_points"]["n_thresholds"] == 50
    # the CLI's numbers are evaluate_sed's on the same inputs; the detections TSV is the frame scores at 0.5
    direct = evaluate_sed(truth, durations, frame_scores=FrameScores(scores, CLASSES, HOP), median_frames=3)
    for k in (*keys, "psds", "psds1", "psds2"):
        assert crnn[k] == pytest.approx(direct.metrics[k]), k
    for k in keys:
        assert det[k] == pytest.approx(crnn[k]), k
    for png in ("psd_roc.png", "OPS/psd_roc.png", "CRNN/psd_roc.png"):
        assert (out / png).read_bytes()[:8] == PNG, png
    clips = sorted((out / "CRNN" / "clips").glob("*.png"))
    assert len(clips) == 4 and clips[0].read_bytes()[:8] == PNG
    assert not (out / "DET" / "psd_roc.png").exists()
    assert "Sound event detection" not in (out / "report.md").read_text().split("\n")[0]
    assert "| DET |" in (out / "sed_systems.md").read_text() and "| OPS |" in (out / "systems.md").read_text()
    # SED inputs without the truth: a clear refusal (exit status 2)
    assert avs_main(["evaluate", str(tmp_path / "det.tsv"), "--out", str(tmp_path / "r2")]) == 2
    assert "need --truth" in capsys.readouterr().err


def test_plot_sed_clip_draws_a_spectrogram_with_scores_and_events(tmp_path):
    rng = np.random.default_rng(0)
    logmel = rng.normal(size=(128, 628))  # (mels, input frames), 16 ms hop: paper 003's input
    s = rng.uniform(size=(157, len(CLASSES)))  # (output frames, classes), 63.75 ms hop
    path = tmp_path / "clip.png"
    plot_sed_clip(
        path,
        s,
        CLASSES,
        0.06375,
        truth=[(1.0, 2.5, "dog"), (4.0, 9.0, "speech")],
        detections=[(1.1, 2.4, "dog")],
        spectrogram=logmel,
        spectrogram_hop_s=255 / 16000,
        duration_s=10.0,
        title="Y00",
    )
    assert path.read_bytes()[:8] == PNG
    plot_sed_clip(tmp_path / "scores_only.png", s, CLASSES, 0.06375, threshold=[0.4, 0.5, 0.6])
    assert (tmp_path / "scores_only.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="spectrogram_hop_s"):
        plot_sed_clip(tmp_path / "x.png", s, CLASSES, 0.06375, spectrogram=logmel)
