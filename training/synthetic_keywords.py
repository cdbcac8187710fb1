"""Synthetic spoken keywords: an offline stand-in for Speech Commands, made with espeak-ng.

The offline main job (`spectrogram-transformers train` with no arguments) needs a small real dataset on
a machine that cannot reach the Hub. Shipping audio would cost tens of MB; synthesising it costs about a
minute. Each clip is one keyword spoken by espeak-ng with a random voice (accent + voice variant), speed,
pitch, amplitude and intonation, resampled to 16 kHz, placed at a random offset in a 1 s clip and mixed
with noise (white, pink, brown, tones or mains hum) at a random signal-to-noise ratio.

The schema is that of `google/speech_commands` on the Hub (`file`, `audio` {bytes, path} 16 kHz,
`label` ClassLabel over the keyword names, `is_unknown`, `speaker_id`, `utterance_id`), so the same
training code reads both. The validation and test splits hold out *whole voice variants* (the timbre:
`f3`, `croak`, `klatt4`, ...) in every accent, so no `speaker_id` — and not even a variant — of the test
split is heard in training; that is what makes the test accuracy mean "generalises to new speakers".

Speed: one espeak-ng process says all keywords of a take (separated by long pauses, split again by
energy), so process start-up is paid once per take rather than once per clip; takes run in a process
pool. Everything random is drawn from a `numpy` generator seeded by (seed, split, take), so the result
does not depend on the pool's scheduling, and a dataset is cached under a directory named by a hash of
its settings and the espeak-ng version.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "ACCENTS",
    "KEYWORDS",
    "SPLITS",
    "SyntheticKeywordsConfig",
    "default_cache_dir",
    "espeak_variants",
    "load_synthetic_keywords",
    "split_voices",
    "synthesize_keywords",
]

# The ten command words of Speech Commands' 12-class task (without _silence_ / _unknown_).
KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# English accents shipped with espeak-ng 1.51 (phoneme rules and intonation differ; the mbrola voices
# need extra packages and are left out).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# "unlabeled": more clips of the training voices with label -1, a pool for self-supervised pre-training (SSAST)
SPLITS = ("train", "validation", "test", "unlabeled")
# intonation of a word: statement, none, question, exclamation (espeak-ng changes the pitch contour)
PUNCTUATION = (".", "", "?", "!")
# espeak-ng writes 22050 Hz; Speech Commands is 16 kHz
ESPEAK_SAMPLING_RATE = 22050
NOISE_KINDS = ("white", "pink", "brown", "tones", "hum")


@dataclass(frozen=True)
class SyntheticKeywordsConfig:
    """Everything that decides the generated dataset (its hash names the cache directory).

    Args:
        train_size, validation_size, test_size: clips per split (rounded up to a multiple of the number of
            keywords: every take says every keyword once, so classes are balanced).
        unlabeled_size: clips of an extra "unlabeled" split (training voices only, `label` -1), a pool for
            self-supervised pre-training; 0 (default) leaves the split out.
        seed: seeds the voice split and every random draw.
        keywords: the class names, in label order.
        accents: espeak-ng language voices combined with every variant into the voices (speakers).
        validation_variant_fraction, test_variant_fraction: share of voice variants held out for each split.
        sampling_rate, clip_seconds: output clips (Speech Commands: 16 kHz, 1 s).
        speed_wpm, pitch, amplitude: espeak-ng `-s`, `-p`, `-a` ranges, drawn uniformly per take.
        snr_db: signal-to-noise ratio range (speech power over the spoken span vs noise), uniform per clip.
        peak_level: range of the final clip's peak amplitude (random gain).
    """

    train_size: int = 20000
    validation_size: int = 1000
    test_size: int = 2000
    unlabeled_size: int = 0
    seed: int = 0
    keywords: tuple[str, ...] = KEYWORDS
    accents: tuple[str, ...] = ACCENTS
    validation_variant_fraction: float = 0.1
    test_variant_fraction: float = 0.2
    sampling_rate: int = 16000
    clip_seconds: float = 1.0
    speed_wpm: tuple[int, int] = (120, 230)
    pitch: tuple[int, int] = (15, 85)
    amplitude: tuple[int, int] = (60, 140)
    snr_db: tuple[float, float] = (0.0, 20.0)
    peak_level: tuple[float, float] = (0.1, 0.9)

    def __post_init__(self):
        for name in ("train_size", "validation_size", "test_size", "unlabeled_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.train_size == 0:
            raise ValueError("train_size must be > 0")
        if len(set(self.keywords)) != len(self.keywords) or not self.keywords:
            raise ValueError(f"keywords must be distinct and non-empty, got {self.keywords}")
        if not 0 < self.validation_variant_fraction + self.test_variant_fraction < 1:
            raise ValueError("validation_variant_fraction + test_variant_fraction must lie strictly between 0 and 1")
        for name in ("speed_wpm", "pitch", "amplitude", "snr_db", "peak_level"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name} must be (low, high) with low <= high, got {(low, high)}")

    def split_sizes(self) -> dict[str, int]:
        return {
            "train": self.train_size,
            "validation": self.validation_size,
            "test": self.test_size,
            "unlabeled": self.unlabeled_size,
        }

    def fingerprint(self, variants: tuple[str, ...]) -> str:
        """Short hash of the settings, the variant list and the espeak-ng version (a new espeak may sound different)."""
        payload = json.dumps(
            {"config": dataclasses.asdict(self), "variants": variants, "espeak": _espeak_version(), "format": 1},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError(
            "espeak-ng is not installed; the synthetic keyword dataset needs it "
            "(Debian/Ubuntu: `apt-get install espeak-ng`, macOS: `brew install espeak-ng`)"
        )
    return binary


def _espeak_version() -> str:
    result = subprocess.run([_espeak_binary(), "--version"], capture_output=True, text=True, check=True)
    return result.stdout.strip().split("  ")[0]


def espeak_variants() -> tuple[str, ...]:
    """Names of the installed espeak-ng voice variants (`f3`, `croak`, `klatt4`, ...), sorted."""
    result = subprocess.run([_espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True)
    names = set()
    for line in result.stdout.splitlines()[1:]:
        columns = line.split()
        # columns: Pty Language Age/Gender VoiceName File; File is "!v/<variant>"
        if len(columns) >= 5 and columns[4].startswith("!v/"):
            names.add(columns[4][len("!v/") :])
    if not names:
        raise RuntimeError("espeak-ng lists no voice variants (`espeak-ng --voices=variant` printed none)")
    return tuple(sorted(names))


def split_voices(variants: tuple[str, ...], config: SyntheticKeywordsConfig) -> dict[str, list[str]]:
    """split -> voices (`accent+variant`) of train / validation / test; each variant belongs to exactly one of
    them, in every accent (the "unlabeled" pool uses the training voices)."""
    order = np.random.default_rng([config.seed, 7919]).permutation(len(variants))
    shuffled = [variants[i] for i in order]
    num_test = max(1, round(len(shuffled) * config.test_variant_fraction))
    num_validation = max(1, round(len(shuffled) * config.validation_variant_fraction))
    if num_test + num_validation >= len(shuffled):
        raise ValueError(f"only {len(shuffled)} voice variants installed: too few to hold some out")
    by_split = {
        "test": shuffled[:num_test],
        "validation": shuffled[num_test : num_test + num_validation],
        "train": shuffled[num_test + num_validation :],
    }
    return {
        split: [f"{accent}+{variant}" for variant in sorted(names) for accent in config.accents]
        for split, names in by_split.items()
    }


def _speak(voice: str, speed: int, pitch: int, amplitude: int, text: str) -> np.ndarray:
    """espeak-ng's 22.05 kHz waveform of `text` as float32 in [-1, 1]."""
    command = [_espeak_binary(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", str(amplitude)]
    # -g: long pauses between words (units of 10 ms) so the take can be split on silence
    command += ["-g", "60", "--stdout", text]
    result = subprocess.run(command, capture_output=True, check=True)
    waveform, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    if rate != ESPEAK_SAMPLING_RATE:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz audio, expected {ESPEAK_SAMPLING_RATE}")
    return waveform


def _spoken_spans(waveform: np.ndarray, min_gap_seconds: float = 0.2) -> list[tuple[int, int]]:
    """(start, end) sample spans of the words in an espeak take: 10 ms frames above 1% of the peak, merged
    across gaps shorter than `min_gap_seconds` (stop closures inside a word last < 100 ms; the -g pauses
    between words last > 400 ms)."""
    hop = ESPEAK_SAMPLING_RATE // 100
    num_frames = len(waveform) // hop
    if num_frames == 0:
        return []
    frame_peaks = np.abs(waveform[: num_frames * hop]).reshape(num_frames, hop).max(axis=1)  # (frames,)
    active = np.flatnonzero(frame_peaks > 0.01 * frame_peaks.max())
    if active.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(active) > min_gap_seconds * 100)
    starts = np.concatenate([active[:1], active[breaks + 1]])
    ends = np.concatenate([active[breaks], active[-1:]]) + 1
    return [(int(start) * hop, int(end) * hop) for start, end in zip(starts, ends)]


def _noise(kind: str, num_samples: int, sampling_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise of the given colour, or a few steady tones / mains hum with harmonics."""
    if kind in ("white", "pink", "brown"):
        spectrum = np.fft.rfft(rng.standard_normal(num_samples))
        frequencies = np.fft.rfftfreq(num_samples, 1.0 / sampling_rate)
        frequencies[0] = frequencies[1]
        exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-exponent
        noise = np.fft.irfft(spectrum / frequencies**exponent, n=num_samples)
    else:
        time_axis = np.arange(num_samples) / sampling_rate
        if kind == "tones":
            frequencies = rng.uniform(100.0, 4000.0, size=rng.integers(1, 4))
        else:  # hum: 50 or 60 Hz and its first harmonics
            frequencies = rng.choice([50.0, 60.0]) * np.arange(1, 6)
        phases = rng.uniform(0, 2 * np.pi, size=len(frequencies))
        weights = rng.uniform(0.3, 1.0, size=len(frequencies))
        noise = (weights[:, None] * np.sin(2 * np.pi * frequencies[:, None] * time_axis + phases[:, None])).sum(0)
        noise = noise + 0.05 * rng.standard_normal(num_samples)  # tones are never perfectly clean
    return noise / np.sqrt(np.mean(noise**2))


def _wav_bytes(clip: np.ndarray, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, clip, sampling_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _render_take(job: tuple[SyntheticKeywordsConfig, str, int, str]) -> list[dict]:
    """One espeak-ng call saying every keyword once in `voice`; returns one mixed clip per keyword."""
    config, split, take, voice = job
    rng = np.random.default_rng([config.seed, SPLITS.index(split), take])
    speed = int(rng.integers(config.speed_wpm[0], config.speed_wpm[1] + 1))
    pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
    amplitude = int(rng.integers(config.amplitude[0], config.amplitude[1] + 1))
    order = rng.permutation(len(config.keywords))
    punctuation = [PUNCTUATION[i] for i in rng.integers(len(PUNCTUATION), size=len(order))]
    text = " ".join(config.keywords[i] + mark for i, mark in zip(order, punctuation))

    waveform = _speak(voice, speed, pitch, amplitude, text)
    spans = _spoken_spans(waveform)
    if len(spans) == len(order):
        words = [waveform[start:end] for start, end in spans]
    else:  # the take did not split cleanly: say each word on its own (slower, but always right)
        words = []
        for i, mark in zip(order, punctuation):
            single = _speak(voice, speed, pitch, amplitude, config.keywords[i] + mark)
            word_spans = _spoken_spans(single, min_gap_seconds=1.0)
            if not word_spans:
                raise RuntimeError(f"espeak-ng produced silence for {config.keywords[i]!r} with voice {voice}")
            words.append(single[word_spans[0][0] : word_spans[-1][1]])

    clip_samples = round(config.sampling_rate * config.clip_seconds)
    examples = []
    for position, (label, word) in enumerate(zip(order, words)):
        speech = soxr.resample(word, ESPEAK_SAMPLING_RATE, config.sampling_rate).astype(np.float64)
        if len(speech) > clip_samples:  # a very slow word: keep its middle
            excess = len(speech) - clip_samples
            speech = speech[excess // 2 : excess // 2 + clip_samples]
        offset = int(rng.integers(0, clip_samples - len(speech) + 1))
        speech_power = np.mean(speech**2) + 1e-12
        kind = NOISE_KINDS[rng.integers(len(NOISE_KINDS))]
        snr_db = rng.uniform(*config.snr_db)
        clip = _noise(kind, clip_samples, config.sampling_rate, rng) * np.sqrt(speech_power / 10 ** (snr_db / 10))
        clip[offset : offset + len(speech)] += speech
        clip *= rng.uniform(*config.peak_level) / np.abs(clip).max()
        utterance_id = take * len(config.keywords) + position
        folder = "unlabeled" if split == "unlabeled" else config.keywords[label]  # Speech Commands: <word>/<file>
        name = f"{folder}/{voice}_{split}_{utterance_id:06d}.wav"
        examples.append(
            {
                "file": name,
                "audio": {"bytes": _wav_bytes(clip.astype(np.float32), config.sampling_rate), "path": name},
                "label": -1 if split == "unlabeled" else int(label),
                "is_unknown": False,
                "speaker_id": voice,
                "utterance_id": utterance_id,
                # not in Speech Commands, but useful to study errors
                "speed": speed,
                "pitch": pitch,
                "noise": kind,
                "snr_db": float(snr_db),
                "offset_seconds": offset / config.sampling_rate,
            }
        )
    return examples


def default_cache_dir() -> Path:
    """`$SPECTROGRAM_TRANSFORMERS_CACHE`, else `$XDG_CACHE_HOME/spectrogram_transformers`, else `~/.cache/...`."""
    if "SPECTROGRAM_TRANSFORMERS_CACHE" in os.environ:
        return Path(os.environ["SPECTROGRAM_TRANSFORMERS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spectrogram_transformers"


def _features(keywords: tuple[str, ...], sampling_rate: int | None):
    """The schema; `sampling_rate=None` gives `audio` as a plain {bytes, path} struct (what `Audio` stores),
    because `datasets` refuses to *encode* into an `Audio` column without torchcodec, while casting the
    stored struct to `Audio` afterwards needs nothing."""
    from datasets import Audio, ClassLabel, Features, Value

    audio = (
        Audio(sampling_rate=sampling_rate) if sampling_rate else {"bytes": Value("binary"), "path": Value("string")}
    )
    return Features(
        {
            "file": Value("string"),
            "audio": audio,
            "label": ClassLabel(names=list(keywords)),
            "is_unknown": Value("bool"),
            "speaker_id": Value("string"),
            "utterance_id": Value("int32"),
            "speed": Value("int16"),
            "pitch": Value("int16"),
            "noise": Value("string"),
            "snr_db": Value("float32"),
            "offset_seconds": Value("float32"),
        }
    )


def _pool_context():
    # fork: the workers only run numpy, soxr and subprocesses, and start instantly (spawn would re-import torch)
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def synthesize_keywords(
    config: SyntheticKeywordsConfig | None = None,
    cache_dir: str | Path | None = None,
    num_workers: int | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> Path:
    """Generate (or reuse) the dataset; returns the directory of a `datasets.DatasetDict.save_to_disk`.

    The directory is `<cache_dir>/keywords-<hash>`; an existing complete one is reused as is.
    """
    from datasets import Dataset, DatasetDict

    config = config or SyntheticKeywordsConfig()
    variants = espeak_variants()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"keywords-{config.fingerprint(variants)}"
    if (target / "dataset_dict.json").is_file() and not overwrite:
        if verbose:
            print(f"[keywords] reusing {target}", flush=True)
        return target

    voices = split_voices(variants, config)
    jobs = []
    for split in SPLITS:
        num_takes = -(-config.split_sizes()[split] // len(config.keywords))  # ceil
        split_voices_ = voices["train" if split == "unlabeled" else split]
        # each take a voice, cycling through a seeded shuffle so every voice is used about equally
        order = np.random.default_rng([config.seed, SPLITS.index(split), 104729]).permutation(len(split_voices_))
        jobs += [(config, split, take, split_voices_[order[take % len(order)]]) for take in range(num_takes)]

    started = time.perf_counter()
    num_workers = num_workers or os.cpu_count() or 1
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers, mp_context=_pool_context()) as pool:
            takes = list(pool.map(_render_take, jobs, chunksize=16))
    else:
        takes = [_render_take(job) for job in jobs]

    storage = _features(config.keywords, None)
    splits = {}
    for split in SPLITS:
        rows = [example for job, take in zip(jobs, takes) if job[1] == split for example in take]
        if rows:
            columns = {name: [row[name] for row in rows] for name in storage}
            splits[split] = Dataset.from_dict(columns, features=storage).cast(
                _features(config.keywords, config.sampling_rate)
            )
    dataset = DatasetDict(splits)

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    dataset.save_to_disk(str(staging))
    (staging / "synthetic_keywords.json").write_text(
        json.dumps({"config": dataclasses.asdict(config), "voices": voices, "espeak": _espeak_version()}, indent=2)
    )
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    if verbose:
        sizes = ", ".join(f"{split} {len(data)}" for split, data in dataset.items())
        print(
            f"[keywords] synthesised {sizes} clips ({len(variants)} voice variants x {len(config.accents)} accents) "
            f"in {time.perf_counter() - started:.1f} s with {num_workers} workers -> {target}",
            flush=True,
        )
    return target


def load_synthetic_keywords(
    config: SyntheticKeywordsConfig | None = None,
    cache_dir: str | Path | None = None,
    decode: bool = False,
    **kwargs,
):
    """The dataset as a `datasets.DatasetDict` (train / validation / test), generated on first use.

    `decode=False` (default) keeps `audio` as {bytes, path}: `datasets`' own decoder needs torchcodec,
    while this package decodes WAV bytes with soundfile.
    """
    from datasets import Audio, load_from_disk

    dataset = load_from_disk(str(synthesize_keywords(config, cache_dir=cache_dir, **kwargs)))
    if not decode:
        sampling_rate = dataset["train"].features["audio"].sampling_rate
        dataset = dataset.cast_column("audio", Audio(sampling_rate=sampling_rate, decode=False))
    return dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesise the offline spoken-keyword dataset with espeak-ng")
    defaults = SyntheticKeywordsConfig()
    parser.add_argument("--cache_dir", default=None, help=f"default: {default_cache_dir()}")
    parser.add_argument("--train_size", type=int, default=defaults.train_size)
    parser.add_argument("--validation_size", type=int, default=defaults.validation_size)
    parser.add_argument("--test_size", type=int, default=defaults.test_size)
    parser.add_argument("--unlabeled_size", type=int, default=defaults.unlabeled_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num_workers", type=int, default=None)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    config = SyntheticKeywordsConfig(
        train_size=args.train_size,
        validation_size=args.validation_size,
        test_size=args.test_size,
        unlabeled_size=args.unlabeled_size,
        seed=args.seed,
    )
    synthesize_keywords(config, cache_dir=args.cache_dir, num_workers=args.num_workers, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
