"""Sound event detection post-processing and the DCASE file formats: pure numpy / scipy functions.

    active = binarize(scores, 0.5)                       # (frames, classes) bool: score >= threshold
    active = median_filter(active, 7)                    # 0.45 s at 63.75 ms (paper 003)
    events = frames_to_events(active, classes, hop_s)    # [(onset_s, offset_s, label), ...]
    events = decode_events(scores, classes, hop_s, 0.5, 7)   # all three, as the DCASE 2020 baseline does

This follows the DCASE 2020 Task 4 baseline (turpaultn/dcase20_task4, ``baseline/``): ``get_predictions`` in
``evaluation_measures.py`` binarises the frame scores with dcase_util's ``ProbabilityEncoder.binarization``
(``score >= threshold``), median-filters the binary matrix with ``scipy.ndimage.median_filter(x, (window, 1))``
(over time, per class, scipy's default ``mode="reflect"``), decodes it with ``ManyHotEncoder.decode_strong``
(dcase_util's ``find_contiguous_regions``: an event spans frames ``[start, end)``), multiplies frame indices by
the output frame hop and clips the times to the clip's length. Frame ``t`` covers ``[t hop, (t + 1) hop)``.

The median filter length comes in seconds in the configs; ``median_window_frames(seconds, hop_s)`` turns it
into frames as the baseline's ``max(int(median_window_s * frames_per_second), 1)``: rounded DOWN, at least 1
(0.45 s at the CRNN's 63.75 ms output hop, 157 frames per 10 s: int(7.06) = 7 frames).

Median filtering commutes with thresholding (a rank filter of ``x >= t`` is ``rank_filter(x) >= t``), so
``median_filter(scores)`` thresholded at any t gives the baseline's detections at t: that is what the PSDS over
operating points and the threshold-free PSDS (avs.eval.sed) are computed on.

DCASE TSV files (tab-separated, one header line):

    truth / detections   filename  onset  offset  event_label    (a file with no event: empty onset/offset/label)
    durations            filename  duration

Clips are keyed by their audio id: the file name without its media extension, as sed_scores_eval keys them
(``audio_id("Y00a.wav") == "Y00a"``; DESED's ``"Y..._0.000_7.000.wav"`` -> ``"Y..._0.000_7.000"``).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

Event = tuple[float, float, str]  # (onset_s, offset_s, event_label)

DEFAULT_THRESHOLD = 0.5  # paper 003 sec. 4: "thresholds are fixed to 0.5 for every class"
DEFAULT_MEDIAN_S = 0.45  # paper 003 sec. 4: "median filtering on ~0.45 s"
# The operating points of the DCASE 2020 PSDS: 50 thresholds 0.01, 0.03, ..., 0.99 (paper 003 sec. 4.2 "50
# operating points linearly distributed from 0.01 to 0.99"; the baseline's np.arange(1 / 100, 1, 1 / 50)).
N_OPERATING_POINTS = 50


def operating_thresholds(n: int = N_OPERATING_POINTS) -> np.ndarray:
    """``n`` decision thresholds ``(2k + 1) / (2n)``, k = 0..n-1 (50: 0.01, 0.03, ..., 0.99), as the baseline's
    ``np.arange(1 / (2 n), 1, 1 / n)``, computed as exact quotients (0.51 is the float nearest 0.51)."""
    if n < 1:
        raise ValueError(f"need at least one operating point, got {n}")
    return np.asarray([(2 * k + 1) / (2 * n) for k in range(n)], dtype=np.float64)


def median_window_frames(window_s: float, hop_s: float) -> int:
    """Median filter length in frames: ``max(floor(window_s / hop_s), 1)`` (the baseline's
    ``max(int(median_window_s * frames_per_s), 1)``; 1e-9 of slack so that 0.3 s at a 0.1 s hop is 3, not 2)."""
    if hop_s <= 0:
        raise ValueError(f"hop_s must be > 0, got {hop_s}")
    if window_s < 0:
        raise ValueError(f"median filter length must be >= 0 s, got {window_s}")
    return max(int(math.floor(window_s / hop_s + 1e-9)), 1)


def _as_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"frame scores must be (frames, classes), got shape {s.shape}")
    return s


def class_thresholds(
    threshold: float | Sequence[float] | Mapping[str, float] | np.ndarray, classes: Sequence[str]
) -> np.ndarray:
    """One threshold per class ``(classes,)`` from a number, a sequence in class order or ``{class: value}``
    (classes it does not name get ``DEFAULT_THRESHOLD``)."""
    n = len(classes)
    if isinstance(threshold, Mapping):
        unknown = sorted(set(threshold) - set(classes))
        if unknown:
            raise ValueError(f"thresholds for unknown classes {unknown}; classes: {list(classes)}")
        return np.asarray([float(threshold.get(c, DEFAULT_THRESHOLD)) for c in classes], dtype=np.float64)
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 0:
        return np.full(n, float(t))
    if t.shape != (n,):
        raise ValueError(f"need one threshold per class ({n}), got shape {t.shape}")
    return t


def binarize(scores: np.ndarray, threshold: float | Sequence[float] | np.ndarray = DEFAULT_THRESHOLD) -> np.ndarray:
    """``(frames, classes)`` scores -> bool activity ``score >= threshold`` (one threshold or one per class;
    dcase_util's ``ProbabilityEncoder.binarization`` with ``global_threshold`` / ``class_threshold``)."""
    s = _as_scores(scores)
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 1 and t.shape != (s.shape[1],):
        raise ValueError(f"need one threshold per class ({s.shape[1]}), got {t.shape[0]}")
    return s >= t


def median_filter(x: np.ndarray, window_frames: int) -> np.ndarray:
    """Median over time of ``(frames, classes)`` values, each class on its own:
    ``scipy.ndimage.median_filter(x, size=(window_frames, 1))`` (mode "reflect"), as the baseline does on its
    binarised predictions. Bool in -> bool out; a window of 1 returns ``x`` unchanged (a copy)."""
    from scipy import ndimage

    a = _as_scores(x)
    w = int(window_frames)
    if w < 1:
        raise ValueError(f"median filter window must be >= 1 frame, got {window_frames}")
    if w == 1 or len(a) == 0:
        return a.copy()
    if a.dtype == bool:
        return ndimage.median_filter(a.astype(np.uint8), size=(w, 1)).astype(bool)
    return ndimage.median_filter(a, size=(w, 1))


def contiguous_regions(active: np.ndarray) -> np.ndarray:
    """1-d activity -> ``(n, 2)`` int frame ranges ``[start, end)`` of its runs of True (dcase_util's
    ``DecisionEncoder.find_contiguous_regions``)."""
    a = np.asarray(active, dtype=bool)
    if a.ndim != 1:
        raise ValueError(f"activity must be 1-d, got shape {a.shape}")
    if a.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    change = np.flatnonzero(a[1:] != a[:-1]) + 1
    if a[0]:
        change = np.r_[0, change]
    if a[-1]:
        change = np.r_[change, a.size]
    return change.reshape(-1, 2).astype(np.int64)


def frames_to_events(
    active: np.ndarray, classes: Sequence[str], hop_s: float, duration_s: float | None = None
) -> list[Event]:
    """``(frames, classes)`` bool activity -> events ``(onset_s, offset_s, label)``: onset = start x hop, offset =
    end x hop (end exclusive), both clipped to ``[0, duration_s]`` when it is given; class by class in the
    order of ``classes``, each in time order (the baseline's ``decode_strong``). Events clipped to nothing
    (starting at or after ``duration_s``) are dropped."""
    a = np.asarray(active, dtype=bool)
    if a.ndim != 2 or a.shape[1] != len(classes):
        raise ValueError(f"activity must be (frames, {len(classes)}), got {a.shape}")
    events: list[Event] = []
    for j, label in enumerate(classes):
        for start, end in contiguous_regions(a[:, j]):
            onset, offset = float(start) * hop_s, float(end) * hop_s
            if duration_s is not None:
                onset, offset = min(max(onset, 0.0), duration_s), min(max(offset, 0.0), duration_s)
                if offset <= onset:
                    continue
            events.append((onset, offset, str(label)))
    return events


def decode_events(
    scores: np.ndarray,
    classes: Sequence[str],
    hop_s: float,
    threshold: float | Sequence[float] | Mapping[str, float] | np.ndarray = DEFAULT_THRESHOLD,
    median_frames: int = 1,
    duration_s: float | None = None,
) -> list[Event]:
    """Frame scores ``(frames, classes)`` -> events: ``binarize`` (``score >= threshold``, per class), then
    ``median_filter`` over ``median_frames`` frames, then ``frames_to_events`` (see the module docstring)."""
    s = _as_scores(scores)
    if s.shape[1] != len(classes):
        raise ValueError(f"scores have {s.shape[1]} classes, classes names {len(classes)}")
    active = binarize(s, class_thresholds(threshold, classes))
    return frames_to_events(median_filter(active, median_frames), classes, hop_s, duration_s)


def frame_timestamps(n_frames: int, hop_s: float, duration_s: float | None = None) -> np.ndarray:
    """Frame boundaries ``(n_kept + 1,)`` in seconds: ``t hop`` for t = 0..n_frames, clipped to ``duration_s``;
    frames that would start at or after the clip's end are left out (the CRNN's 157 frames x 63.75 ms reach
    10.009 s: the last one ends at 10.0 s)."""
    ts = np.arange(n_frames + 1, dtype=np.float64) * hop_s
    if duration_s is not None:
        keep = int(np.searchsorted(ts, duration_s, side="left"))  # frames starting before the end
        ts = np.minimum(ts[: max(keep, 1) + 1], duration_s)
        if len(ts) < 2 or ts[1] <= ts[0]:
            raise ValueError(f"no frame of hop {hop_s} s starts inside a clip of {duration_s} s")
    return ts


def snap_to_thresholds(scores: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each score -> the largest of ``thresholds`` it reaches (``score >= t``), or -inf when it reaches none:
    thresholding the result at any t of ``thresholds`` detects exactly what the raw scores do at t, and no other
    decision threshold exists in it (what a PSDS over those operating points needs)."""
    t = np.sort(np.asarray(thresholds, dtype=np.float64))
    s = np.asarray(scores, dtype=np.float64)
    idx = np.searchsorted(t, s, side="right") - 1
    return np.where(idx >= 0, t[np.maximum(idx, 0)], -np.inf)


# ------------------------------------------------------------------------------------------ DCASE TSV files
# File name endings taken for media extensions (and stripped from audio ids); anything else is part of the name:
# DESED's "Y--4gqARaEJE_0.000_7.000.wav" has the id "Y--4gqARaEJE_0.000_7.000".
MEDIA_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".mp4", ".mkv", ".webm", ".avi", ".mov")


def audio_id(filename: str) -> str:
    """A DCASE ``filename`` (or a clip id) -> its audio id: the base name without its media extension
    (``"audio/Y1.wav"`` -> ``"Y1"``, ``"validation/Y1"`` -> ``"Y1"``), as sed_scores_eval keys clips (it drops any
    extension; avs only ``MEDIA_EXTENSIONS``, so that ids with dots such as DESED's stay whole)."""
    name = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and f".{ext.lower()}" in MEDIA_EXTENSIONS else name


def dcase_filename(clip: str, extension: str = ".wav") -> str:
    """The ``filename`` column for a clip: the clip's base name, with ``extension`` added when it has no media
    extension (``"validation/Y1"`` -> ``"Y1.wav"``; ``audio_id`` of the result is ``audio_id(clip)``)."""
    name = str(clip).replace("\\", "/").rsplit("/", 1)[-1]
    return name if audio_id(name) != name else name + extension


def _rows(path: str | Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: empty file (expected a header line)")
    return [c.strip() for c in rows[0]], rows[1:]


def read_events_tsv(path: str | Path, *, key: str = "audio_id") -> dict[str, list[Event]]:
    """A DCASE events TSV (truth or detections: ``filename onset offset event_label``) -> ``{clip: [events]}``,
    events in file order; a row with an empty label lists a clip without events (its key maps to ``[]``).
    ``key="audio_id"`` keys clips by ``audio_id(filename)``, ``key="filename"`` by the filename as written."""
    header, rows = _rows(path)
    need = ("filename", "onset", "offset", "event_label")
    missing = [c for c in need if c not in header]
    if missing:
        raise ValueError(f"{path}: no column(s) {missing} in the header {header}; expected {' '.join(need)}")
    i_f, i_on, i_off, i_lab = (header.index(c) for c in need)
    out: dict[str, list[Event]] = {}
    for n, row in enumerate(rows, start=2):
        row = row + [""] * (len(header) - len(row))
        name = row[i_f].strip()
        if not name:
            raise ValueError(f"{path}:{n}: empty filename")
        clip = audio_id(name) if key == "audio_id" else name
        events = out.setdefault(clip, [])
        label = row[i_lab].strip()
        if not label or label.lower() == "nan":
            continue
        try:
            onset, offset = float(row[i_on]), float(row[i_off])
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: onset / offset must be numbers ({exc})") from None
        if not (offset >= onset >= 0.0):
            raise ValueError(f"{path}:{n}: need 0 <= onset <= offset, got {onset}, {offset}")
        events.append((onset, offset, label))
    return out


def _fmt(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".") if math.isfinite(x) else str(x)


def write_events_tsv(
    path: str | Path,
    events: Mapping[str, Iterable[Event]],
    *,
    filenames: Mapping[str, str] | None = None,
    extension: str = ".wav",
) -> int:
    """``{clip: [(onset, offset, label), ...]}`` -> a DCASE events TSV; returns the number of events written.
    The filename column is ``filenames[clip]`` when given, else ``dcase_filename(clip, extension)``. Clips
    without events get one row with empty onset, offset and label (as DESED's truth lists them), so the file
    still names every clip. Rows sorted by clip, then onset."""
    n = 0
    lines = ["filename\tonset\toffset\tevent_label"]
    for clip in sorted(events, key=str):
        name = (filenames or {}).get(clip) or dcase_filename(clip, extension)
        clip_events = sorted(events[clip], key=lambda e: (e[0], e[1], e[2]))
        if not clip_events:
            lines.append(f"{name}\t\t\t")
        for onset, offset, label in clip_events:
            lines.append(f"{name}\t{_fmt(float(onset))}\t{_fmt(float(offset))}\t{label}")
            n += 1
    Path(path).write_text("\n".join(lines) + "\n")
    return n


def read_durations_tsv(path: str | Path, *, key: str = "audio_id") -> dict[str, float]:
    """A DCASE durations TSV (``filename duration``) -> ``{clip: seconds}`` (keys as in ``read_events_tsv``)."""
    header, rows = _rows(path)
    if "filename" not in header or "duration" not in header:
        raise ValueError(f"{path}: expected the columns filename, duration; the header is {header}")
    i_f, i_d = header.index("filename"), header.index("duration")
    out: dict[str, float] = {}
    for n, row in enumerate(rows, start=2):
        try:
            seconds = float(row[i_d])
        except (ValueError, IndexError):
            raise ValueError(f"{path}:{n}: duration must be a number") from None
        if not seconds > 0:
            raise ValueError(f"{path}:{n}: duration must be > 0, got {seconds}")
        name = row[i_f].strip()
        out[audio_id(name) if key == "audio_id" else name] = seconds
    return out


def write_durations_tsv(path: str | Path, durations: Mapping[str, float], *, extension: str = ".wav") -> None:
    """``{clip: seconds}`` -> a DCASE durations TSV (filenames as in ``write_events_tsv``)."""
    lines = ["filename\tduration"]
    for clip in sorted(durations, key=str):
        name = dcase_filename(clip, extension)
        lines.append(f"{name}\t{_fmt(float(durations[clip]))}")
    Path(path).write_text("\n".join(lines) + "\n")


# A folder of detections at several operating points, one TSV per threshold (psds_eval's layout, the
# baseline's save_predictions): any file name ending in "th_<threshold>.tsv", e.g. "detections_th_0.51.tsv".
THRESHOLD_FILE = re.compile(r"(?:^|[_\-.])th_?(\d+(?:\.\d*)?|\.\d+)\.tsv$")


def threshold_files(folder: str | Path) -> dict[float, Path]:
    """``{threshold: path}`` of the per-threshold detection TSVs in ``folder`` (empty when there are none)."""
    out: dict[float, Path] = {}
    for p in sorted(Path(folder).iterdir()):
        m = THRESHOLD_FILE.search(p.name)
        if p.is_file() and m:
            t = float(m.group(1))
            if t in out:
                raise ValueError(f"{folder}: two files for threshold {t}: {out[t].name}, {p.name}")
            out[t] = p
    return dict(sorted(out.items()))
