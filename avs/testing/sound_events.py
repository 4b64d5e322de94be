"""Generated DESED-like sound events and two acoustic conditions, for a sound event detection set that a
small CRNN can learn on a CPU (``avs.data.demo.write_sed_demo``).

Five classes named as in DESED, each with its own spectro-temporal shape; every event is randomised
(pitch, duration, level, number of sub-events) from the ``numpy.random.Generator`` it is given. Event
lengths (``DURATION_RANGE_S``) in brackets:

    Alarm_bell_ringing  repeated strikes (5-9 per s) of a harmonic tone, f0 800-1400 Hz, each decaying  (1-4 s)
    Dishes              3-8 clinks: inharmonic bar partials (1 : 2.76 : 5.40) from 2-4 kHz, 50-150 ms decay
                                                                                                 (0.6-2.5 s)
    Dog                 barks of 0.15-0.3 s, 0.05-0.2 s apart: harmonic + noise source, falling f0 300-600 Hz,
                        two formant bands (0.5-0.9 and 1.2-2 kHz)                                (0.6-2.5 s)
    Frying              broadband sizzle (noise above 0.8-1.5 kHz) with 80-250 random crackles per s  (2-6 s)
    Speech              voiced harmonic sweeps, f0 100-220 Hz with intonation, 3-6 syllables per s (AM),
                        vowel formants changing per syllable                                       (1-4 s)

Soundscapes are rendered in an ``AcousticCondition``. ``SYNTHETIC`` stands for DESED's synthetic
soundscapes: dry events (8-24 dB over the background) on pink noise at -40 dBFS. ``RECORDED`` stands for
DESED's recorded (YouTube) clips: events 5-18 dB over the background, and each clip gets a room
(exponentially decaying noise impulse response, RT60 0.3-0.9 s, direct-to-reverberant ratio -2..6 dB, a few
early reflections), brown noise (-46..-34 dBFS) with mains hum as background, a microphone / channel colouring
(high-pass 120-300 Hz, low-pass 4.5-7 kHz, a resonance of +-6 dB at 0.8-3 kHz) and a level change of
-10..+4 dB. Labels are the dry events' times; the reverberation tail is not labelled.

All functions are deterministic given the generator state. Audio is float64 (samples,) inside, float32 out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

SAMPLE_RATE_HZ = 16_000
SOUND_EVENT_CLASSES = ("Alarm_bell_ringing", "Dishes", "Dog", "Frying", "Speech")

# (shortest, longest) seconds of each class's event (a clink or bark train may end earlier: its decay).
DURATION_RANGE_S: dict[str, tuple[float, float]] = {
    "Alarm_bell_ringing": (1.0, 4.0),
    "Dishes": (0.6, 2.5),
    "Dog": (0.6, 2.5),
    "Frying": (2.0, 6.0),
    "Speech": (1.0, 4.0),
}


def _fade(x: np.ndarray, sample_rate_hz: int, seconds: float = 0.005) -> np.ndarray:
    """Linear fade-in / fade-out of ``seconds`` at both ends (in place); returns ``x``."""
    m = min(x.size // 2, int(seconds * sample_rate_hz))
    if m > 0:
        ramp = np.linspace(0.0, 1.0, m)
        x[:m] *= ramp
        x[x.size - m :] *= ramp[::-1]
    return x


def fast_fft_size(n: int) -> int:
    """The smallest even 5-smooth number (2^a 3^b 5^c) >= ``n``: a length numpy's FFT handles fast."""
    best = 1 << max(1, int(np.ceil(np.log2(max(n, 2)))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 * (1 << max(1, int(np.ceil(np.log2(max(n / p35, 1.0))))))
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def _spectral_shape(x: np.ndarray, sample_rate_hz: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter ``x`` (samples,) by the zero-phase magnitude response ``gain(freqs_hz)`` (FFT, zero padded)."""
    size = fast_fft_size(x.size + min(x.size, 1024))  # a little padding against wrap-around
    spec = np.fft.rfft(x, size)
    return np.fft.irfft(spec * gain(np.fft.rfftfreq(size, 1.0 / sample_rate_hz)), size)[: x.size]


def _bands(freqs_hz: np.ndarray, centres_hz: Sequence[float], widths_hz: Sequence[float]) -> np.ndarray:
    """Sum of Gaussian bumps (formants) over ``freqs_hz``; the same shape as ``freqs_hz``."""
    out = np.zeros_like(freqs_hz, dtype=np.float64)
    for c, w in zip(centres_hz, widths_hz, strict=True):
        out += np.exp(-0.5 * ((freqs_hz - c) / w) ** 2)
    return out


def _n(seconds: float, sample_rate_hz: int) -> int:
    return max(1, int(round(seconds * sample_rate_hz)))


# ------------------------------------------------------------------------------------------ event sounds
def alarm_bell(rng: np.random.Generator, seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Repeated harmonic strikes: f0 800-1400 Hz, harmonics 1-4, 5-9 strikes per second, each decaying."""
    n = _n(seconds, sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    f0_hz = rng.uniform(800.0, 1400.0)
    rate_hz = rng.uniform(5.0, 9.0)
    decay_s = rng.uniform(0.25, 0.6) / rate_hz
    amps = (1.0, rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.2))
    x = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        if k * f0_hz < 0.45 * sample_rate_hz:
            x += a * np.sin(2 * np.pi * k * f0_hz * t_s + rng.uniform(0, 2 * np.pi))
    since_strike_s = np.mod(t_s, 1.0 / rate_hz)
    env = np.exp(-since_strike_s / decay_s) * np.minimum(1.0, since_strike_s / 0.002)  # 2-ms attack
    return _fade(x * env, sample_rate_hz)


def dishes(rng: np.random.Generator, seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """3-8 clinks: inharmonic free-bar partials (1, 2.76, 5.40) from 2-4 kHz, 50-150 ms exponential decay."""
    n = _n(seconds, sample_rate_hz)
    x = np.zeros(n)
    n_clinks = int(rng.integers(3, 9))
    gaps_s = rng.uniform(0.5, 1.5, n_clinks - 1)
    starts_s = np.concatenate([[0.0], np.cumsum(gaps_s * max(seconds - 0.1, 0.0) / max(gaps_s.sum(), 1e-9))])
    nyquist = sample_rate_hz / 2
    for start_s in starts_s:
        start = int(start_s * sample_rate_hz)
        decay_s = rng.uniform(0.05, 0.15)
        m = min(n - start, int(5 * decay_s * sample_rate_hz))
        if m <= 0:
            continue
        t_s = np.arange(m) / sample_rate_hz
        base_hz = rng.uniform(2000.0, 4000.0)
        clink = np.zeros(m)
        for ratio, a, d in ((1.0, 1.0, 1.0), (2.76, rng.uniform(0.3, 0.8), 0.6), (5.40, rng.uniform(0.1, 0.4), 0.4)):
            if ratio * base_hz < 0.95 * nyquist:
                clink += a * np.sin(2 * np.pi * ratio * base_hz * t_s) * np.exp(-t_s / (d * decay_s))
        x[start : start + m] += rng.uniform(0.5, 1.0) * clink
    return _fade(x, sample_rate_hz, 0.001)


def dog(rng: np.random.Generator, seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Barks of 0.15-0.3 s, 0.05-0.2 s apart: harmonic + noise source with falling f0 (300-600 Hz), two formants."""
    n = _n(seconds, sample_rate_hz)
    x = np.zeros(n)
    f1_hz, f2_hz = rng.uniform(500.0, 900.0), rng.uniform(1200.0, 2000.0)
    f0_start_hz = rng.uniform(300.0, 600.0)
    noise_part = rng.uniform(0.3, 0.5)
    t0_s = 0.0
    while True:
        bark_s = rng.uniform(0.15, 0.3)
        start, m = int(t0_s * sample_rate_hz), _n(bark_s, sample_rate_hz)
        if start + m > n and start > 0:
            break
        m = min(m, n - start)  # a first bark longer than ``seconds`` is cut
        t_s = np.arange(m) / sample_rate_hz
        f0_hz = f0_start_hz * rng.uniform(0.9, 1.1) * (1.0 - 0.35 * t_s / bark_s)  # falling pitch
        phase = 2 * np.pi * np.cumsum(f0_hz) / sample_rate_hz
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0_start_hz * 1.1 < 0.45 * sample_rate_hz)
        voiced = voiced / np.std(voiced)
        source = (1 - noise_part) * voiced + noise_part * rng.standard_normal(m)
        bark = _spectral_shape(source, sample_rate_hz, lambda f: _bands(f, (f1_hz, f2_hz), (250.0, 400.0)) + 0.05)
        env = np.minimum(1.0, t_s / 0.01) * np.exp(-t_s / (0.5 * bark_s))
        x[start : start + m] += env * bark
        t0_s += bark_s + rng.uniform(0.05, 0.2)
    return _fade(x, sample_rate_hz)


def frying(rng: np.random.Generator, seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Broadband sizzle: high-passed noise bed (corner 0.8-1.5 kHz) plus 80-250 crackles per second."""
    n = _n(seconds, sample_rate_hz)
    corner_hz = rng.uniform(800.0, 1500.0)
    highpass = lambda f: 1.0 / np.sqrt(1.0 + (corner_hz / np.maximum(f, 1.0)) ** 4)  # noqa: E731
    bed = _spectral_shape(rng.standard_normal(n), sample_rate_hz, highpass)
    bed *= 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * np.arange(n) / sample_rate_hz)  # slow swell
    crackle = np.zeros(n)
    n_crackles = rng.poisson(rng.uniform(80.0, 250.0) * seconds)
    for start in rng.integers(0, n, n_crackles):
        m = min(n - int(start), int(rng.uniform(0.001, 0.005) * sample_rate_hz))
        crackle[start : start + m] += rng.pareto(2.5) * rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 3.0))
    crackle = _spectral_shape(crackle, sample_rate_hz, highpass)
    x = bed / np.std(bed) + 0.6 * crackle / max(np.std(crackle), 1e-12)
    return _fade(x, sample_rate_hz, 0.05)


_VOWELS_HZ = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def speech(rng: np.random.Generator, seconds: float, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Voiced harmonic sweeps: f0 100-220 Hz with intonation, 3-6 syllables per s, per-syllable vowel formants."""
    n = _n(seconds, sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    f0_mean_hz = rng.uniform(100.0, 220.0)
    f0_hz = f0_mean_hz * (
        1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t_s + rng.uniform(0, 2 * np.pi)) - 0.1 * t_s / seconds
    )  # intonation: a slow sweep and a falling trend
    phase = 2 * np.pi * np.cumsum(f0_hz) / sample_rate_hz
    # syllables: boundaries, an AM envelope (raised sine per syllable, some pauses) and a vowel each
    rate_hz = rng.uniform(3.0, 6.0)
    edges_s = np.cumsum(rng.uniform(0.7, 1.3, int(seconds * rate_hz) + 2) / rate_hz)
    edges_s = np.concatenate([[0.0], edges_s[edges_s < seconds], [seconds]])
    env = np.zeros(n)
    formants = np.zeros((3, n))
    for i, (a_s, b_s) in enumerate(zip(edges_s[:-1], edges_s[1:], strict=True)):
        a, b = int(a_s * sample_rate_hz), int(b_s * sample_rate_hz)
        if b <= a:
            continue
        voiced = i == 0 or rng.uniform() > 0.15
        env[a:b] = (rng.uniform(0.5, 1.0) if voiced else 0.0) * np.sin(np.pi * np.linspace(0, 1, b - a)) ** 0.7
        formants[:, a:b] = np.asarray(_VOWELS_HZ[int(rng.integers(len(_VOWELS_HZ)))], dtype=np.float64)[:, None]
    # smooth formant transitions (20 ms moving average)
    k = int(0.02 * sample_rate_hz)
    kernel = np.ones(k) / k
    formants = np.stack([np.convolve(np.pad(f, (k, k), mode="edge"), kernel, "same")[k:-k] for f in formants])
    x = np.zeros(n)
    widths_hz = (90.0, 120.0, 170.0)
    for h in range(1, int(4000.0 / f0_mean_hz) + 1):
        f_h = h * f0_hz
        gain = sum(np.exp(-0.5 * ((f_h - formants[j]) / widths_hz[j]) ** 2) * 0.6**j for j in range(3))
        x += (gain + 0.02) * np.sin(h * phase) / np.sqrt(h)
    return _fade(x * env, sample_rate_hz)


EVENT_GENERATORS: dict[str, Callable[[np.random.Generator, float, int], np.ndarray]] = {
    "Alarm_bell_ringing": alarm_bell,
    "Dishes": dishes,
    "Dog": dog,
    "Frying": frying,
    "Speech": speech,
}


def event_sound(
    label: str,
    rng: np.random.Generator,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    seconds: float | None = None,
) -> np.ndarray:
    """One dry event of class ``label``: (samples,) float64 with RMS 1 over its active part.

    ``seconds`` defaults to a random length in ``DURATION_RANGE_S[label]``. The sound ends where its last
    sample above -60 dB of its peak is (a clink or bark train may end before ``seconds``).
    """
    if label not in EVENT_GENERATORS:
        raise ValueError(f"unknown sound event class {label!r}; known: {list(EVENT_GENERATORS)}")
    if seconds is None:
        seconds = float(rng.uniform(*DURATION_RANGE_S[label]))
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    x = EVENT_GENERATORS[label](rng, seconds, sample_rate_hz)
    peak = float(np.max(np.abs(x)))
    if not peak > 0:
        raise RuntimeError(f"generated {label} event of {seconds} s is silent")  # not expected
    x = x[: np.flatnonzero(np.abs(x) > 1e-3 * peak)[-1] + 1]
    active = np.abs(x) > 1e-2 * peak
    return x / np.sqrt(np.mean(x[active] ** 2))


# ------------------------------------------------------------------------------------ acoustic conditions
@dataclasses.dataclass(frozen=True)
class AcousticCondition:
    """How a soundscape is recorded. Ranges (lo, hi) are drawn uniformly per clip (or per event: snr_db)."""

    name: str
    noise_exponent: float  # background noise colour: power ~ 1 / f**exponent (1 pink, 2 brown)
    noise_dbfs: tuple[float, float]  # background RMS level, dB re full scale
    snr_db: tuple[float, float]  # event RMS over background RMS, per event
    rt60_s: tuple[float, float] | None = None  # reverberation time of the room; None: dry
    drr_db: tuple[float, float] = (0.0, 6.0)  # direct-to-reverberant energy ratio
    hum_dbfs: tuple[float, float] | None = None  # mains hum (50 Hz + harmonics) level; None: no hum
    highpass_hz: tuple[float, float] | None = None  # channel high-pass corner (2nd order)
    lowpass_hz: tuple[float, float] | None = None  # channel low-pass corner (4th order)
    resonance_db: tuple[float, float] | None = None  # microphone resonance gain at 0.8-3 kHz
    gain_db: tuple[float, float] = (0.0, 0.0)  # overall level change of the clip


SYNTHETIC = AcousticCondition("synthetic", noise_exponent=1.0, noise_dbfs=(-40.0, -40.0), snr_db=(8.0, 24.0))
RECORDED = AcousticCondition(
    "recorded",
    noise_exponent=2.0,
    noise_dbfs=(-46.0, -34.0),
    snr_db=(5.0, 18.0),
    rt60_s=(0.3, 0.9),
    drr_db=(-2.0, 6.0),
    hum_dbfs=(-58.0, -46.0),
    highpass_hz=(120.0, 300.0),
    lowpass_hz=(4500.0, 7000.0),
    resonance_db=(-6.0, 6.0),
    gain_db=(-10.0, 4.0),
)
CONDITIONS = {c.name: c for c in (SYNTHETIC, RECORDED)}


def impulse_response(
    rng: np.random.Generator, rt60_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ, drr_db: float = 3.0
) -> np.ndarray:
    """Room impulse response, (round(rt60_s * rate),) with unit energy: the direct path at sample 0, then
    3-6 early reflections (3-40 ms) and a Gaussian-noise tail whose amplitude falls 60 dB in ``rt60_s``
    (slightly low-passed: air absorption); ``drr_db`` = direct energy over the rest's.
    """
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be > 0, got {rt60_s}")
    n = _n(rt60_s, sample_rate_hz)
    t_s = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-6.91 * t_s / rt60_s)
    tail = np.convolve(tail, np.ones(3) / 3, "same")  # a little air absorption
    tail[: int(0.003 * sample_rate_hz)] = 0.0
    for _ in range(int(rng.integers(3, 7))):
        tail[int(rng.uniform(0.003, 0.04) * sample_rate_hz)] += rng.uniform(-0.6, 0.6)
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))
    ir = tail
    ir[0] = 1.0
    return ir / np.sqrt(np.sum(ir**2))


def _convolve(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``x`` (samples,) convolved with ``ir``, cut to the length of ``x`` (FFT convolution)."""
    size = fast_fft_size(x.size + ir.size - 1)
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: x.size]


def _noise(rng: np.random.Generator, n: int, exponent: float, sample_rate_hz: int) -> np.ndarray:
    """Unit-RMS noise with power ~ 1 / f**exponent (no DC), (n,)."""
    size = fast_fft_size(n)
    spec = np.fft.rfft(rng.standard_normal(size))
    f_hz = np.fft.rfftfreq(size, 1.0 / sample_rate_hz)
    scale = np.zeros_like(f_hz)
    scale[1:] = np.maximum(f_hz[1:], 20.0) ** (-exponent / 2.0)  # flat below 20 Hz
    x = np.fft.irfft(spec * scale, size)[:n]
    return x / np.sqrt(np.mean(x**2))


def _db(value_db: float) -> float:
    return float(10.0 ** (value_db / 20.0))


def _draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return float(lo) if lo == hi else float(rng.uniform(lo, hi))


def channel_gain(condition: AcousticCondition, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray] | None:
    """The condition's microphone / channel magnitude response as a function of frequency (None: flat)."""
    hp = _draw(rng, condition.highpass_hz) if condition.highpass_hz else None
    lp = _draw(rng, condition.lowpass_hz) if condition.lowpass_hz else None
    if condition.resonance_db:
        res_db, res_hz = _draw(rng, condition.resonance_db), float(rng.uniform(800.0, 3000.0))
    else:
        res_db, res_hz = 0.0, 1000.0
    if hp is None and lp is None and res_db == 0.0:
        return None

    def gain(f_hz: np.ndarray) -> np.ndarray:
        g = np.ones_like(f_hz)
        if hp is not None:
            g /= np.sqrt(1.0 + (hp / np.maximum(f_hz, 1.0)) ** 4)
        if lp is not None:
            g /= np.sqrt(1.0 + (f_hz / lp) ** 8)
        octaves = np.log2(np.maximum(f_hz, 1.0) / res_hz)
        return g * 10.0 ** (res_db * np.exp(-0.5 * (octaves / 0.4) ** 2) / 20.0)

    return gain


# ---------------------------------------------------------------------------------------------- soundscapes
Event = tuple[float, float, str]  # (onset_s, offset_s, label)


def place_events(
    rng: np.random.Generator,
    n_events: int,
    seconds: float = 10.0,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    classes: Sequence[str] = SOUND_EVENT_CLASSES,
    *,
    max_tries: int = 20,
) -> list[tuple[int, str, np.ndarray]]:
    """``n_events`` dry events at random places in a clip: [(start sample, label, sound)], by start.

    Classes are drawn uniformly (with repetition); two events of one class never overlap (an event that
    finds no free place in ``max_tries`` is left out); events of different classes may overlap.
    """
    n = _n(seconds, sample_rate_hz)
    placed: list[tuple[int, str, np.ndarray]] = []
    for _ in range(n_events):
        label = classes[int(rng.integers(len(classes)))]
        sound = event_sound(label, rng, sample_rate_hz)[:n]
        for _ in range(max_tries):
            start = int(rng.integers(0, n - sound.size + 1))
            same = [(s, s + x.size) for s, lab, x in placed if lab == label]
            if all(start + sound.size <= a or start >= b for a, b in same):
                placed.append((start, label, sound))
                break
    return sorted(placed, key=lambda p: (p[0], p[1]))


def render_soundscape(
    placed: Sequence[tuple[int, str, np.ndarray]],
    condition: AcousticCondition,
    rng: np.random.Generator,
    seconds: float = 10.0,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> tuple[np.ndarray, list[Event]]:
    """Mix ``placed`` events (from ``place_events``) into a clip recorded in ``condition``.

    Returns (audio (samples,) float32 in [-1, 1], events [(onset_s, offset_s, label)] sorted). Onsets and
    offsets are those of the dry sounds, in seconds rounded to 1 ms (the reverberation tail is not part of
    the label, as annotators mark the source). The clip is scaled down if its peak would exceed 0.95.
    """
    n = _n(seconds, sample_rate_hz)
    noise_rms = _db(_draw(rng, condition.noise_dbfs))
    background = noise_rms * _noise(rng, n, condition.noise_exponent, sample_rate_hz)
    if condition.hum_dbfs:
        t_s = np.arange(n) / sample_rate_hz
        hum_hz = 50.0 if rng.uniform() < 0.5 else 60.0
        hum = sum(
            a * np.sin(2 * np.pi * k * hum_hz * t_s + rng.uniform(0, 2 * np.pi))
            for k, a in ((1, 1.0), (2, 0.5), (3, 0.3))
        )
        background += _db(_draw(rng, condition.hum_dbfs)) * hum / np.sqrt(np.mean(hum**2))
    dry = np.zeros(n)
    events: list[Event] = []
    for start, label, sound in placed:
        stop = min(n, start + sound.size)
        dry[start:stop] += _db(_draw(rng, condition.snr_db)) * noise_rms * sound[: stop - start]
        events.append((round(start / sample_rate_hz, 3), round(stop / sample_rate_hz, 3), label))
    wet = dry
    if condition.rt60_s is not None and placed:
        ir = impulse_response(rng, _draw(rng, condition.rt60_s), sample_rate_hz, _draw(rng, condition.drr_db))
        wet = _convolve(dry, ir)
    audio = wet + background
    gain = channel_gain(condition, rng)
    if gain is not None:
        audio = _spectral_shape(audio, sample_rate_hz, gain)
    audio *= _db(_draw(rng, condition.gain_db))
    peak = float(np.max(np.abs(audio)))
    if peak > 0.95:
        audio *= 0.95 / peak
    return audio.astype(np.float32), sorted(events)


def soundscape(
    rng: np.random.Generator,
    n_events: int,
    condition: AcousticCondition = SYNTHETIC,
    seconds: float = 10.0,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    classes: Sequence[str] = SOUND_EVENT_CLASSES,
) -> tuple[np.ndarray, list[Event]]:
    """A clip with up to ``n_events`` random events recorded in ``condition``: (audio float32, events)."""
    placed = place_events(rng, n_events, seconds, sample_rate_hz, classes)
    return render_soundscape(placed, condition, rng, seconds, sample_rate_hz)
