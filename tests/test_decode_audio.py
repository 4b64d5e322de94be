"""Audio decode, channel handling, resampling, segmenting and the crash / hang guard."""

import time

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from avs.decode.audio import read_audio
from avs.decode.errors import (
    CorruptMedia,
    DecoderCrashed,
    DecodeTimeout,
    EmptyFile,
    MissingFile,
    NoAudioTrack,
    TooShort,
)
from avs.decode.guard import GuardedDecoder
from avs.decode.segments import resample, segment_clip, to_channels
from avs.testing import media, signals


def test_wav_flac_and_mp4_audio_track_decode(tmp_path):
    audio = np.stack([signals.tone(440.0, 1.0, 48_000), signals.tone(880.0, 1.0, 48_000)])
    media.write_wav(tmp_path / "a.wav", audio, 48_000)
    media.write_wav(tmp_path / "a.flac", audio, 48_000)
    media.write_video(tmp_path / "a.mp4", 1.0, fps=5, audio=audio, audio_rate_hz=48_000)
    for name in ("a.wav", "a.flac"):
        got, rate = read_audio(str(tmp_path / name))
        assert rate == 48_000 and got.shape == (2, 48_000)
        np.testing.assert_allclose(got, audio, atol=1e-4)
    got, rate = read_audio(str(tmp_path / "a.mp4"))  # AAC inside MP4, through PyAV
    assert rate == 48_000 and got.shape[0] == 2 and abs(got.shape[1] - 48_000) < 2048
    assert got.dtype == np.float32


def test_bad_files_raise_clear_errors(tmp_path):
    media.write_empty(tmp_path / "empty.wav")
    media.write_corrupt(tmp_path / "junk.wav")
    media.write_corrupt(tmp_path / "junk.mp4")
    media.write_video(tmp_path / "silent_video.mp4", 1.0, fps=5, audio=None)
    with pytest.raises(EmptyFile):
        read_audio(str(tmp_path / "empty.wav"))
    with pytest.raises(CorruptMedia):
        read_audio(str(tmp_path / "junk.wav"))
    with pytest.raises(CorruptMedia):
        read_audio(str(tmp_path / "junk.mp4"))
    with pytest.raises(NoAudioTrack):
        read_audio(str(tmp_path / "silent_video.mp4"))
    with pytest.raises(MissingFile):
        read_audio(str(tmp_path / "nope.wav"))


def test_channels_and_resampling():
    stereo = np.stack([np.ones(10), np.zeros(10)]).astype(np.float32)
    np.testing.assert_allclose(to_channels(stereo, "mono"), 0.5 * np.ones((1, 10)))
    assert to_channels(stereo[:1], "stereo").shape == (2, 10)
    assert to_channels(np.zeros((6, 10), np.float32), "stereo").shape == (2, 10)
    x = signals.tone(1000.0, 1.0, 44_100)[None]
    y = resample(x, 44_100, 48_000)
    assert y.shape == (1, 48_000)
    np.testing.assert_allclose(y, AF.resample(torch.from_numpy(x), 44_100, 48_000).numpy())


def test_segmenting_ten_one_second_segments():
    audio = np.arange(11 * 100, dtype=np.float32)[None]  # 11 s at 100 Hz
    segs, starts = segment_clip(audio[:, :1000], 100, 1.0)
    assert segs.shape == (10, 1, 100)
    np.testing.assert_allclose(starts, np.arange(10.0))
    np.testing.assert_array_equal(segs[3, 0], audio[0, 300:400])
    # a trailing partial segment of >= half a segment is zero-padded, a shorter one dropped
    assert segment_clip(audio[:, :1040], 100, 1.0)[0].shape[0] == 10
    segs, _ = segment_clip(audio[:, :1050], 100, 1.0)
    assert segs.shape[0] == 11 and segs[-1, 0, 50:].max() == 0 and segs[-1, 0, 0] == 1000
    with pytest.raises(TooShort):
        segment_clip(audio[:, :20], 100, 1.0)
    # whole-clip mode pads / crops to clip_seconds
    segs, starts = segment_clip(audio[:, :950], 100, None, clip_seconds=10.0)
    assert segs.shape == (1, 1, 1000) and starts.tolist() == [0.0]


def test_starting_a_decoder_process_is_not_charged_to_a_file(tmp_path):
    """A child that needs 2 s to import its decoders still decodes a file under a 1-s timeout (the deadline starts
    when the child says it is ready), also the file after a crash; a hang is still cut at 1 s."""
    good = tmp_path / "good.wav"
    media.write_wav(good, signals.tone(440.0, 0.5, 16_000), 16_000)
    media.write_wav(tmp_path / "crash.wav", signals.tone(440.0, 0.5, 16_000), 16_000)
    media.write_wav(tmp_path / "hang.wav", signals.tone(440.0, 0.5, 16_000), 16_000)
    plugins = ("avs.testing.slow_import", "avs.testing.faulty")
    with GuardedDecoder(timeout_s=1.0, plugins=plugins, backend="faulty") as dec:
        assert dec.decode(str(good))[0].shape == (1, 8000)
        with pytest.raises(DecoderCrashed, match="died"):
            dec.decode(str(tmp_path / "crash.wav"))
        assert dec.decode(str(good))[0].shape == (1, 8000)  # a fresh, slow-starting child: not a timeout
        t0 = time.perf_counter()
        with pytest.raises(DecodeTimeout, match="within 1 s"):
            dec.decode(str(tmp_path / "hang.wav"))
        assert time.perf_counter() - t0 < 1.0 + 5  # the hang itself is cut at the file's timeout


def test_a_decoder_process_that_cannot_start_is_the_machines_failure_not_the_files(tmp_path):
    """A plugin missing on this worker kills every decoder child while it starts: InfrastructureError (the run
    stops, avs serve answers 503), never a DecodeError that would become an error row for every file."""
    from avs.decode.errors import DecodeError, InfrastructureError, infrastructure_reason
    from avs.shards.config import AudioConfig
    from avs.shards.stages import DecodeStage

    good = tmp_path / "good.wav"
    media.write_wav(good, signals.tone(440.0, 0.5, 16_000), 16_000)
    with GuardedDecoder(timeout_s=5.0, plugins=("avs_plugin_not_installed",)) as dec:
        with pytest.raises(InfrastructureError, match="decoder_unavailable: .*died while starting") as stop:
            dec.decode(str(good))
    assert not isinstance(stop.value, DecodeError) and "avs_plugin_not_installed" in str(stop.value)
    assert infrastructure_reason(RuntimeError(str(stop.value))) == "decoder_unavailable"  # from a worker's text
    stage = DecodeStage(AudioConfig(sample_rate_hz=16_000), 5.0, ("avs_plugin_not_installed",))
    with pytest.raises(InfrastructureError):  # not an error row of good.wav
        stage.decode_clip(str(good))
    stage.decoder.close()


def test_guard_survives_crash_and_hang(tmp_path):
    good = tmp_path / "good.wav"
    media.write_wav(good, signals.tone(440.0, 0.5, 16_000), 16_000)
    for name in ("crash.wav", "hang.wav"):
        media.write_wav(tmp_path / name, signals.tone(440.0, 0.5, 16_000), 16_000)
    with GuardedDecoder(timeout_s=3.0, plugins=("avs.testing.faulty",), backend="faulty") as dec:
        assert dec.decode(str(good))[0].shape == (1, 8000)
        with pytest.raises(DecoderCrashed, match="died"):
            dec.decode(str(tmp_path / "crash.wav"))
        assert dec.decode(str(good))[1] == 16_000  # a fresh child took over
        with pytest.raises(DecodeTimeout, match="within 3 s"):
            dec.decode(str(tmp_path / "hang.wav"))
        assert dec.decode(str(good))[0].shape == (1, 8000)
        with pytest.raises(EmptyFile):
            media.write_empty(tmp_path / "e.wav")
            dec.decode(str(tmp_path / "e.wav"))
