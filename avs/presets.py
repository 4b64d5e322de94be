"""Named settings of the papers, so users write ``--preset dcase2021-t1b`` instead of copying numbers.

Each preset is a nested mapping merged under the user's YAML and flags (``avs.config.deep_merge``).
Every number cites its paper (files in ../shared/seeds/) and section.
"""

from __future__ import annotations

import copy
from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # Paper 000 (Okazaki et al., DCASE2021 Task 1B), section 2.1: 10-s clips split into ten 1-s files;
    # librosa log-mel with sr 48 kHz, n_mels 256, n_fft 4096, hop_length 512 (other settings librosa
    # defaults of 2021, librosa 0.8: Hann window, centred frames padded by reflection, Slaney mel, power 2,
    # power_to_db top_db 80), plus delta and delta-delta (the DCASE2020 Task 1A winner's input, ref [12])
    # stacked as 3 channels.
    "dcase2021-t1b": {
        "audio": {
            "sample_rate_hz": 48_000,  # 000 §2.1 "sampling rate (sr) is 48kHz"
            "channels": "mono",  # 000 §2.1 uses librosa, which loads mono (to_mono) by default
            "segment_seconds": 1.0,  # 000 §2.1 "ten 1 second audio files"
        },
        "features": [
            {
                "name": "logmel",
                "extractor": "logmel",
                "params": {
                    "n_mels": 256,  # 000 §2.1
                    "n_fft": 4096,  # 000 §2.1
                    "hop_length": 512,  # 000 §2.1
                    # 000 §2.1 uses librosa (2021: < 0.10), whose stft padded centred frames by reflection;
                    # librosa >= 0.10 and avs's default pad with zeros, which changes the 4 + 4 edge frames of
                    # every 1-s segment (8 of 94; by up to 16 dB on a real recording, issue 8)
                    "pad_mode": "reflect",
                    "deltas": True,  # 000 §2.1 "log-mel spectrograms with delta/delta-delta features"
                },
            },
            # 000 §2.2: frame CNNs on frames of each video; §3 trains them at 448 x 448
            {"name": "frames", "extractor": "frames", "params": {"size": [448, 448]}},
            # 000 §2.3 / Table 1: CLIP image features of three encoders for the CLIP Late Fusion Network
            {"name": "clip_rn50x4", "extractor": "clip", "params": {"model": "RN50x4"}},  # 640-d
            {"name": "clip_rn101", "extractor": "clip", "params": {"model": "RN101"}},  # 512-d
            {"name": "clip_vitb32", "extractor": "clip", "params": {"model": "ViT-B-32"}},  # 512-d
            # 000 Table 2 C01-C03: zero-shot CLIP with the original labels as sentences
            {"name": "zeroshot_rn50x4", "extractor": "clip-zeroshot", "params": {"encoder": {"model": "RN50x4"}}},
            {"name": "zeroshot_rn101", "extractor": "clip-zeroshot", "params": {"encoder": {"model": "RN101"}}},
            {"name": "zeroshot_vitb32", "extractor": "clip-zeroshot", "params": {"encoder": {"model": "ViT-B-32"}}},
        ],
        "video": {
            "sampling": "even",  # 000 §2.2 "12 image frames from 10 seconds video file with equal interval"
            "n_frames": 12,  # 000 §2.2 (training, and the per-10-s-file ensemble of §2.4); 1-s test videos
            # get five frames instead (000 §3): preset dcase2021-t1b-test
            "short_side": 448,  # decode once at the largest size any feature set needs (frames: 448)
        },
    },
    # Paper 003 (Turpault et al., DCASE2020 Task 4 baseline), section 4 "input features": 16 kHz, 128 mel
    # bands, 2048-sample STFT windows, hop 255; the baseline code (paper footnote 3, turpaultn/dcase20_task4
    # baseline/data_utils/Desed.py calculate_mel_spec) takes librosa.stft(window=np.hamming(2048),
    # center=True, pad_mode='reflect'), the mel of the magnitude (power 1) with fmin 0, fmax 8 kHz, htk=False,
    # norm=None, and librosa.amplitude_to_db (top_db 80); 10-s clips -> 628 frames.
    "dcase2020-sed": {
        "audio": {
            "sample_rate_hz": 16_000,  # 003 §4
            "channels": "mono",
            "segment_seconds": None,  # one 10-s clip per row (DESED clips are 10 s, 003 §2)
            "clip_seconds": 10.0,
        },
        "features": [
            {
                "name": "logmel",
                "extractor": "logmel",
                "params": {
                    "n_mels": 128,  # 003 §4
                    "n_fft": 2048,  # 003 §4 "2048 sample windows"
                    "hop_length": 255,  # 003 §4 "255 hop size"
                    "window": "hamming",  # baseline code
                    "periodic_window": False,  # baseline code: np.hamming is the symmetric window
                    "pad_mode": "reflect",  # baseline code passes pad_mode='reflect' explicitly
                    "power": 1.0,  # baseline code: mel of the magnitude
                    "mel_norm": None,  # baseline code
                    "top_db": 80.0,  # librosa.amplitude_to_db default
                    "deltas": False,
                    "n_frames": 628,  # 1 + 160000 // 255
                },
            }
        ],
    },
    # Paper 004 (tri-training + adversarial SED, DCASE2019 Task 4), section 4.1: audio down-sampled from
    # 44.1 kHz to 22.05 kHz, 128-bin log-mel, 2048 window, 345 hop, 640 x 128 input per 10-s clip. The paper
    # names no library and no code; its 640 frames = 1 + 220500 // 345 are librosa's centred frames, so the
    # other settings are librosa's defaults of 2019 (0.6 / 0.7: Hann window, reflect padding, Slaney mel,
    # power 2, power_to_db top_db 80).
    "dcase2019-tritrain": {
        "audio": {
            "sample_rate_hz": 22_050,  # 004 §4.1
            "channels": "mono",
            "segment_seconds": None,
            "clip_seconds": 10.0,  # DCASE2019 Task 4 clips are 10 s
        },
        "features": [
            {
                "name": "logmel",
                "extractor": "logmel",
                "params": {
                    "n_mels": 128,  # 004 §4.1 "128-bin"
                    "n_fft": 2048,  # 004 §4.1 "2048-window"
                    "hop_length": 345,  # 004 §4.1 "345-hop"
                    "pad_mode": "reflect",  # librosa < 0.10 default (004 is a 2019 paper), see above
                    "deltas": False,
                    "n_frames": 640,  # 004 §4.1 "640 frames" (1 + 220500 // 345 = 640)
                },
            }
        ],
    },
}

# Paper 001 (visual recognition with ambient sound as supervision), sections 3.1-3.3: 3.75-s audio windows
# ("sound is temporally invariant in this window", §3.1), each paired with the video frame at its centre,
# described by McDermott-Simoncelli texture statistics (502-d, §3.2) or by MFCC (§3.2). The statistics are
# clustered with k-means (``avs cluster``, k = 15 by default as every table of 001) into pseudo-labels for a
# frame CNN (§3.3).
_OWENS_AUDIO = {
    "sample_rate_hz": 20_000,  # the texture toolbox's rate (20 kHz; §3.2 is silent); MFCC resamples to 10 kHz
    "channels": "mono",
    "segment_seconds": 3.75,  # 001 §3.1
    "min_last_fraction": 1.0,  # whole windows only: a padded window would skew the statistics
}
_OWENS_VIDEO = {
    "sampling": "segments",  # 001 §3.1: the frame at the centre of each 3.75-s window
    "short_side": 256,
}
_OWENS_FRAMES = {"name": "frames", "extractor": "frames", "params": {"size": [256, 256]}}  # §4 is silent; 224 crops fit

PRESETS["owens-texture"] = {
    "audio": _OWENS_AUDIO,
    "video": _OWENS_VIDEO,
    "features": [
        # 001 §3.2: 32 + 32 + 117 + 320 + 1 = 502 statistics (avs/features/texture.py documents each field);
        # no STFT and so no frame padding: the subbands are filtered over the whole window with one FFT
        # (circular, as the toolbox and Owens et al. [24])
        {"name": "texture", "extractor": "texture", "params": {}},
        _OWENS_FRAMES,
    ],
}
PRESETS["owens-mfcc"] = {
    "audio": _OWENS_AUDIO,
    "video": _OWENS_VIDEO,
    "features": [
        {
            "name": "mfcc",
            "extractor": "mfcc",
            "params": {
                "n_mfcc": 20,  # 001 §3.2 "20 triangular bandpass filters" -> 20 coefficients
                "n_mels": 20,  # 001 §3.2
                "n_fft": 256,  # 001 §3.2 "256 Hamming window"
                "win_length": 256,
                "hop_length": 128,  # 001 §3.2 "12.8 ms apart" at 10 kHz
                "window": "hamming",  # 001 §3.2
                # 001 §3.2 "we use MFCC from Librosa" (2021: < 0.10), whose stft padded centred frames by
                # reflection; librosa >= 0.10 and avs's default pad with zeros
                "pad_mode": "reflect",
                "lowpass_hz": 5000.0,  # 001 §3.2 "low-pass filter ... at 5 kHz"
                "target_sample_rate_hz": 10_000,  # 001 §3.2 "then sample at 10 kHz"
                "flatten": True,  # (20, 293) -> 5860 values per 3.75-s window (the paper's 20 x 155: see mfcc.py)
            },
        },
        _OWENS_FRAMES,
    ],
}

# Paper 000 §3: "we extracted five images from each test video by ffmpeg, and ensembled the confidences of the
# five images equally for each test video"; the test videos are 1-s files (§2.1 "The test dataset is provided
# as 1 second audio files"). Five frames at the centres of five equal intervals of each (1-s) file: t = 0.1,
# 0.3, ..., 0.9 s (equal intervals as §2.2; the paper gives no ffmpeg command -- `ffmpeg -vf fps=5` takes about
# t = 0, 0.2, ..., 0.8 s, which is `--set video.sampling=fps --set video.fps=5`). Audio and feature sets as
# dcase2021-t1b: a 1-s file is one 1-s segment.
PRESETS["dcase2021-t1b-test"] = {
    **copy.deepcopy(PRESETS["dcase2021-t1b"]),
    "video": {**PRESETS["dcase2021-t1b"]["video"], "n_frames": 5},  # 000 §3 "five images from each test video"
}

# Paper 002 (Hitachi at TRECVID DSDI 2020): LADI's still aerial images and the test shots, through the video
# branch (a still image is a one-frame video, avs.decode.image). One frames set; the training task resizes it.
PRESETS["trecvid-dsdi"] = {
    "video": {
        "sampling": "fps",  # 002 §2.5 "we encoded each shot-clip into image frames using ffmpeg with 10fps"
        "fps": 10.0,  # 002 §2.5
        "short_side": 448,  # decode at the largest input of 002 §3 (HRNet-W18: 448 x 448)
    },
    "features": [
        # 002 §3 (1) "Resized to 360x360 (only for HRNet-W18, resized to 448x448)": stored at 448 x 448 (the
        # larger), each model's input size is the training task's resize
        {"name": "frames", "extractor": "frames", "params": {"size": [448, 448]}},
    ],
}

# The same at 128 x 128 for the generated demo set (scripts/demo_multilabel.sh, benchmarks): its images are
# 128 x 96 and its models train at 64 x 64 on CPU, so storing 448 x 448 would only cost decode time
PRESETS["trecvid-dsdi-demo"] = {
    "video": {**PRESETS["trecvid-dsdi"]["video"], "short_side": 128},
    "features": [{"name": "frames", "extractor": "frames", "params": {"size": [128, 128]}}],
}

# Paper 001's transfer task: Pascal VOC 2007 images (still images are one-frame clips) stored at 256 x 256, as the
# pretext frames (owens-*); the transfer presets (voc07-transfer-*) train at 224 x 224
PRESETS["voc07"] = {
    "video": {"sampling": "fps", "fps": 1.0, "short_side": 256},
    "features": [{"name": "frames", "extractor": "frames", "params": {"size": [256, 256]}}],
}


def preset(name: str) -> dict[str, Any]:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
