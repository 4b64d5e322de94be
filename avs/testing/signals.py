"""Deterministic, seeded test signals as float32 numpy arrays.

Every generator returns ``(samples,)`` (mono) or ``(channels, samples)`` float32 in [-1, 1]; the number of
samples is ``round(seconds * sample_rate_hz)``. The same arguments (seed included) always give the same
array, bit for bit.

``scene_audio`` makes a stereo "soundscape" whose statistics depend on a class index (noise colour, tone
frequency, burst rate, stereo width), so a classifier trained on generated data can learn the classes.
``event_sound`` makes a class-dependent sound event for strongly labelled (SED) clips.
"""

from __future__ import annotations

import numpy as np


def n_samples(seconds: float, sample_rate_hz: int) -> int:
    """Number of samples in ``seconds`` at ``sample_rate_hz`` (rounded)."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    if sample_rate_hz <= 0:
        raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
    return int(round(seconds * sample_rate_hz))


def _rng(seed: int | tuple[int, ...]) -> np.random.Generator:
    return np.random.default_rng(list(seed) if isinstance(seed, tuple) else seed)


def _peak_normalize(x: np.ndarray, peak: float) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / m) if m > 0 else x).astype(np.float32)


def silence(seconds: float, sample_rate_hz: int, channels: int | None = None) -> np.ndarray:
    """All zeros: (samples,) when ``channels`` is None, else (channels, samples)."""
    n = n_samples(seconds, sample_rate_hz)
    return np.zeros((n,) if channels is None else (channels, n), dtype=np.float32)


def colored_noise(
    seconds: float, sample_rate_hz: int, exponent: float = 0.0, seed: int = 0, amplitude: float = 0.5
) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), peak = ``amplitude``.

    Returns (samples,) float32. Shaped in the frequency domain (rfft of white Gaussian noise).
    """
    n = n_samples(seconds, sample_rate_hz)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    white = _rng(seed).standard_normal(n)  # (samples,)
    if exponent == 0:
        return _peak_normalize(white, amplitude)
    spec = np.fft.rfft(white)  # (samples // 2 + 1,)
    freqs_hz = np.fft.rfftfreq(n, d=1.0 / sample_rate_hz)
    scale = np.ones_like(freqs_hz)
    scale[1:] = freqs_hz[1:] ** (-exponent / 2.0)  # amplitude ~ f^(-exponent/2)
    scale[0] = 0.0  # no DC
    shaped = np.fft.irfft(spec * scale, n=n)
    return _peak_normalize(shaped, amplitude)


def white_noise(seconds: float, sample_rate_hz: int, seed: int = 0, amplitude: float = 0.5) -> np.ndarray:
    """White Gaussian noise, (samples,) float32, peak = ``amplitude``."""
    return colored_noise(seconds, sample_rate_hz, 0.0, seed, amplitude)


def pink_noise(seconds: float, sample_rate_hz: int, seed: int = 0, amplitude: float = 0.5) -> np.ndarray:
    """Pink (1/f) noise, (samples,) float32, peak = ``amplitude``."""
    return colored_noise(seconds, sample_rate_hz, 1.0, seed, amplitude)


def tone(
    freq_hz: float, seconds: float, sample_rate_hz: int, amplitude: float = 0.5, phase_rad: float = 0.0
) -> np.ndarray:
    """Pure sine tone, (samples,) float32."""
    t_s = np.arange(n_samples(seconds, sample_rate_hz)) / sample_rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t_s + phase_rad)).astype(np.float32)


def chirp(
    f0_hz: float,
    f1_hz: float,
    seconds: float,
    sample_rate_hz: int,
    method: str = "linear",
    amplitude: float = 0.5,
) -> np.ndarray:
    """Sine sweep from ``f0_hz`` to ``f1_hz`` over ``seconds``; ``method`` "linear" or "log". (samples,)."""
    n = n_samples(seconds, sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    if seconds <= 0:
        return np.zeros(0, dtype=np.float32)
    if method == "linear":
        k = (f1_hz - f0_hz) / seconds  # Hz per second
        phase = 2 * np.pi * (f0_hz * t_s + 0.5 * k * t_s**2)
    elif method in ("log", "logarithmic", "exponential"):
        if f0_hz <= 0 or f1_hz <= 0:
            raise ValueError("a log chirp needs f0_hz > 0 and f1_hz > 0")
        if f0_hz == f1_hz:
            phase = 2 * np.pi * f0_hz * t_s
        else:
            r = np.log(f1_hz / f0_hz) / seconds  # log-frequency slope, 1/s
            phase = 2 * np.pi * f0_hz * (np.exp(r * t_s) - 1.0) / r
    else:
        raise ValueError(f"chirp method must be 'linear' or 'log', got {method!r}")
    return (amplitude * np.sin(phase)).astype(np.float32)


def harmonic_burst(
    f0_hz: float,
    seconds: float,
    sample_rate_hz: int,
    n_harmonics: int = 6,
    amplitude: float = 0.5,
    vibrato_hz: float = 5.0,
    vibrato_depth: float = 0.02,
    envelope: str = "hann",
) -> np.ndarray:
    """One voiced burst: harmonics of ``f0_hz`` (1/k amplitudes, slight vibrato).

    ``envelope`` "hann" (a Hann window over the burst) or "flat". Returns (samples,) float32.
    Harmonics above Nyquist are left out.
    """
    if envelope not in ("hann", "flat"):
        raise ValueError(f"envelope must be 'hann' or 'flat', got {envelope!r}")
    n = n_samples(seconds, sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    f_inst_hz = f0_hz * (1.0 + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * t_s))
    phase = 2 * np.pi * np.cumsum(f_inst_hz) / sample_rate_hz  # (samples,)
    out = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        if k * f0_hz * (1 + vibrato_depth) >= sample_rate_hz / 2:
            break
        out += np.sin(k * phase) / k
    if envelope == "hann" and n > 1:
        out *= np.hanning(n)
    return _peak_normalize(out, amplitude) if n else out.astype(np.float32)


def speech_like_bursts(
    seconds: float,
    sample_rate_hz: int,
    seed: int = 0,
    burst_rate_hz: float = 3.0,
    f0_hz: float = 140.0,
    amplitude: float = 0.5,
    pause_probability: float = 0.3,
) -> np.ndarray:
    """Speech-like signal: syllable-rate harmonic bursts (random f0 jitter, length) with pauses.

    Bursts start every ~1/``burst_rate_hz`` seconds (jittered); each is skipped with
    ``pause_probability``, giving pauses. Returns (samples,) float32, peak = ``amplitude``.
    """
    if burst_rate_hz <= 0:
        raise ValueError(f"burst_rate_hz must be > 0, got {burst_rate_hz}")
    rng = _rng(seed)
    n = n_samples(seconds, sample_rate_hz)
    out = np.zeros(n)
    period_s = 1.0 / burst_rate_hz
    t_s = float(rng.uniform(0.0, period_s))
    while t_s < seconds:
        burst_s = period_s * rng.uniform(0.4, 0.8)
        if rng.uniform() >= pause_probability:
            f0 = f0_hz * rng.uniform(0.85, 1.15)
            b = harmonic_burst(f0, burst_s, sample_rate_hz, amplitude=float(rng.uniform(0.5, 1.0)))
            start = int(round(t_s * sample_rate_hz))
            stop = min(n, start + b.size)
            out[start:stop] += b[: stop - start]
        t_s += period_s * rng.uniform(0.8, 1.2)
    return _peak_normalize(out, amplitude) if np.any(out) else out.astype(np.float32)


# Per-class parameters of scene_audio, cycled for class indices >= len(...).
_NOISE_EXPONENTS = (0.0, 1.0, 2.0, 0.5, 1.5)  # noise colour: white, pink, brown, in between


def scene_params(label_index: int) -> dict[str, float]:
    """The class-dependent parameters ``scene_audio`` uses for ``label_index`` (>= 0)."""
    if label_index < 0:
        raise ValueError(f"label_index must be >= 0, got {label_index}")
    k = label_index
    return {
        "noise_exponent": _NOISE_EXPONENTS[k % len(_NOISE_EXPONENTS)],
        "tone_hz": 150.0 * 2.0 ** (k * 0.5),  # 150 Hz, then half an octave higher per class
        "burst_rate_hz": 0.5 + 0.4 * k,  # speech-like bursts per second
        "burst_f0_hz": 110.0 + 25.0 * ((3 * k) % 10),
        "stereo_width": 0.2 + 0.6 * ((k * 7) % 10) / 9.0,  # 0 = identical channels, 1 = independent
        "tone_level": 0.15 + 0.05 * (k % 4),
    }


def scene_audio(label_index: int, seconds: float, sample_rate_hz: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Class-dependent soundscape: coloured noise + a steady tone + speech-like bursts.

    Returns (channels, samples) float32, peak 0.8. The class (``label_index``) fixes the noise colour, tone
    frequency, burst rate / pitch and stereo width; ``seed`` varies the realisation (which noise, where the
    bursts fall, small tone detuning), so clips of one class differ but share their statistics.
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    p = scene_params(label_index)
    rng = _rng((seed, label_index))
    base_seed = int(rng.integers(2**31))
    n = n_samples(seconds, sample_rate_hz)

    common = colored_noise(seconds, sample_rate_hz, p["noise_exponent"], seed=base_seed, amplitude=1.0)
    detune = float(rng.uniform(0.98, 1.02))
    steady = tone(p["tone_hz"] * detune, seconds, sample_rate_hz, amplitude=1.0)
    bursts = speech_like_bursts(
        seconds,
        sample_rate_hz,
        seed=base_seed + 1,
        burst_rate_hz=p["burst_rate_hz"],
        f0_hz=p["burst_f0_hz"],
        amplitude=1.0,
    )
    out = np.empty((channels, n), dtype=np.float64)  # (channels, samples)
    w = p["stereo_width"]
    for c in range(channels):
        own = colored_noise(seconds, sample_rate_hz, p["noise_exponent"], seed=base_seed + 2 + c, amplitude=1.0)
        noise = (1.0 - w) * common + w * own
        pan = 1.0 if channels == 1 else 0.6 + 0.8 * c / (channels - 1)  # bursts louder to the right
        out[c] = 0.5 * noise + p["tone_level"] * steady + 0.35 * pan * bursts
    return _peak_normalize(out, 0.8)


def event_sound(label_index: int, seconds: float, sample_rate_hz: int, seed: int = 0) -> np.ndarray:
    """A class-dependent sound event (for strong labels): (samples,) float32, peak 0.5.

    Even classes are harmonic (pitch depends on the class), odd classes band-limited noise bursts
    (centre frequency depends on the class); 10 ms fades at both ends.
    """
    n = n_samples(seconds, sample_rate_hz)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    rng = _rng((seed, label_index, 7))
    nyquist = sample_rate_hz / 2
    if label_index % 2 == 0:
        f0 = min(200.0 * 2.0 ** (label_index / 4.0), nyquist / 8)
        f0 *= rng.uniform(0.97, 1.03)
        x = harmonic_burst(f0, seconds, sample_rate_hz, amplitude=1.0, envelope="flat").astype(np.float64)
    else:
        centre_hz = min(500.0 * 2.0 ** (label_index / 5.0), 0.7 * nyquist)
        spec = np.fft.rfft(rng.standard_normal(n))
        f_hz = np.fft.rfftfreq(n, d=1.0 / sample_rate_hz)
        spec *= np.exp(-0.5 * ((f_hz - centre_hz) / (0.25 * centre_hz)) ** 2)
        x = np.fft.irfft(spec, n=n)
    fade = min(n // 2, int(0.01 * sample_rate_hz))
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[n - fade :] *= ramp[::-1]
    return _peak_normalize(x, 0.5)
