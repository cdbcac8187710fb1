"""Inputs of an archive run, listed lazily: audio files, directories (recursive), `@list.txt` files and rows of a
`datasets` dataset.

A source lists its inputs in one deterministic order (the order of the output) as `ArchiveInput`s, and decodes
one input's payload to a mono waveform. Listing is a generator: a directory tree or a list file of millions of
paths is never held as one Python object per path; the runner keeps only what sharding and `--resume` need
(positions as int64 and 64-bit key hashes).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.errors import InferenceError

__all__ = [
    "AUDIO_SUFFIXES",
    "ArchiveInput",
    "DatasetSource",
    "FileSource",
    "InputSource",
    "decode_file",
]

# what a directory contributes without --glob: the formats libsndfile reads, plus the common ones ffmpeg decodes
AUDIO_SUFFIXES = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf", ".w64",
    ".m4a", ".aac", ".wma", ".mp4", ".webm", ".mkv",
)  # fmt: skip


@dataclass(frozen=True)
class ArchiveInput:
    """One input: a file (`path`, `size` in bytes and `mtime` when it exists) or a dataset row (`index`).
    `position` is its place in the listing, which is the order of the output."""

    position: int
    path: str | None = None
    size: int | None = None
    mtime: float | None = None
    index: int | None = None

    @property
    def identity(self) -> dict[str, Any]:
        """The row fields that say which input a row belongs to (and, for files, which version of it)."""
        if self.index is not None:
            return {"index": self.index}
        return {"path": self.path, "size": self.size, "mtime": self.mtime}

    @property
    def name(self) -> str:
        """For messages: the path, or `row N`."""
        return self.path if self.path is not None else f"row {self.index}"

    @property
    def resume_key(self) -> int:
        return resume_key(self.identity)


def resume_key(identity: dict[str, Any]) -> int:
    """64-bit hash of a row's identity (path + size + mtime, or dataset index): what `--resume` matches on."""
    if identity.get("index") is not None:
        text = f"index\0{identity['index']}"
    else:
        mtime = identity.get("mtime")
        text = f"path\0{identity.get('path')}\0{identity.get('size')}\0{'' if mtime is None else repr(float(mtime))}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def decode_file(path: str, sampling_rate: int) -> np.ndarray:
    """The one place an archive run decodes a file (mono float32 at `sampling_rate`)."""
    from ..inference.decoding import decode_audio

    return decode_audio(path, sampling_rate)


class InputSource:
    """What the runner needs from a source of inputs (subclasses: `FileSource`, `DatasetSource`)."""

    #: rows are known up front (a count for the progress bar, sizes to balance ranks); False for streamed datasets
    countable: bool = True

    def iter_inputs(self, wanted: Callable[[int], bool] | None = None) -> Iterator[tuple[ArchiveInput, Any]]:
        """`(input, payload)` in listing order; with `wanted`, only the positions it accepts (the others are
        skipped before any file system or dataset access that only they would need)."""
        raise NotImplementedError

    def decode(self, payload: Any, sampling_rate: int) -> np.ndarray:
        """A payload of `iter_inputs` -> mono float32 waveform; raises ValueError / OSError when unreadable."""
        raise NotImplementedError

    def long_file(self, payload: Any, longer_than_s: float, sampling_rate: int) -> tuple[str, int | None] | None:
        """`(path, samples at sampling_rate)` when the payload is a file whose header says it lasts more than
        `longer_than_s` (the runner then streams it instead of decoding it whole); None otherwise."""
        return None

    def listing(self) -> Iterator[str] | None:
        """The paths in output order, for the merge (None: dataset rows, ordered by index)."""
        return None

    def describe(self) -> str:
        raise NotImplementedError


class FileSource(InputSource):
    """Files, directories (walked recursively in sorted order; `glob` filters file names, default: audio
    suffixes) and `@list.txt` files (one path per line; blank lines and lines starting with '#' skipped), in the
    order given. A path that does not exist is still an input (it is reported as unreadable)."""

    def __init__(self, arguments: Sequence[str | os.PathLike], glob: str | None = None):
        self.arguments = [os.fspath(argument) for argument in arguments]
        self.glob = glob
        for argument in self.arguments:
            if argument.startswith("@") and not os.path.isfile(argument[1:]):
                raise InferenceError(
                    f"list file {argument[1:]} does not exist (an @ argument names a file of paths, one per line)"
                )

    def describe(self) -> str:
        return f"{len(self.arguments)} argument(s)"

    def _matches(self, name: str) -> bool:
        if self.glob is not None:
            return fnmatch.fnmatch(name, self.glob)
        return os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES

    def _walk(self, directory: str) -> Iterator[str]:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                yield from self._walk(entry.path)
            elif self._matches(entry.name):
                yield entry.path

    def _paths(self) -> Iterator[str]:
        for argument in self.arguments:
            if argument.startswith("@"):
                with open(argument[1:], encoding="utf-8") as lines:
                    for line in lines:
                        line = line.strip()
                        if line and not line.startswith("#"):
                            yield line
            elif os.path.isdir(argument):
                yield from self._walk(argument)
            else:
                yield argument

    def listing(self) -> Iterator[str]:
        return self._paths()

    def iter_inputs(self, wanted: Callable[[int], bool] | None = None) -> Iterator[tuple[ArchiveInput, Any]]:
        for position, path in enumerate(self._paths()):
            if wanted is not None and not wanted(position):
                continue
            try:
                status = os.stat(path)
                size, mtime = status.st_size, status.st_mtime
            except OSError:
                size = mtime = None
            yield ArchiveInput(position, path=path, size=size, mtime=mtime), path

    def decode(self, payload: Any, sampling_rate: int) -> np.ndarray:
        return decode_file(payload, sampling_rate)

    def long_file(self, payload: Any, longer_than_s: float, sampling_rate: int) -> tuple[str, int | None] | None:
        from ..feature_extraction.streaming import probe_audio

        try:
            info = probe_audio(payload)
        except (ValueError, OSError):  # unreadable: decoding it says why, as for any file
            return None
        if info.duration is None or info.duration <= longer_than_s:
            return None
        return payload, info.samples_at(sampling_rate)


def _require_datasets():
    try:
        import datasets
    except ImportError:
        raise InferenceError(
            "--dataset needs the `datasets` library: pip install 'spectrogram-transformers[train]'"
        ) from None
    return datasets


def load_dataset_split(name: str | os.PathLike, split: str, *, streaming: bool = False, config: str | None = None):
    """A split of a Hub dataset or of a local `save_to_disk` / parquet / audio-folder directory."""
    datasets = _require_datasets()
    path = Path(name)
    if path.exists():
        from ..training.dataset_loading import _load_local
        from ..training.recipe import DatasetSpec

        if not path.is_dir():
            raise InferenceError(
                f"--dataset {name} is a file; give a dataset directory (save_to_disk, parquet shards or an audio folder) or a Hub id"
            )
        try:
            splits = _load_local(
                DatasetSpec(hub_id=str(path), splits={"train": "train", "eval": "train"}), path, streaming
            )
        except (ValueError, FileNotFoundError) as error:
            raise InferenceError(str(error).replace("--data_dir", "--dataset")) from None
    else:
        try:
            splits = dict(datasets.load_dataset(str(name), config, streaming=streaming))
        except Exception as error:  # the datasets library raises many types (connection, missing config, ...)
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise InferenceError(f"could not load dataset {name!r}: {first_line}") from None
    if split not in splits:
        raise InferenceError(
            f"dataset {name} has no split {split!r}; its splits are {sorted(splits)} (pick one with --split)"
        )
    return splits[split]


class DatasetSource(InputSource):
    """Rows of a `datasets` split (map-style, or streamed): each row's `audio_column` is decoded (any sampling
    rate, bytes or a path) with the same code as training's collator. Rows are identified by their index."""

    def __init__(self, dataset, audio_column: str = "audio", description: str = "dataset"):
        datasets = _require_datasets()
        if audio_column not in (dataset.column_names or []):
            raise InferenceError(
                f"the dataset has no audio column {audio_column!r} (columns: {dataset.column_names}); name it with --audio-column"
            )
        self.dataset = dataset.cast_column(audio_column, datasets.Audio(decode=False))
        self.audio_column = audio_column
        self.countable = hasattr(self.dataset, "__len__")
        self.description = description

    @classmethod
    def load(
        cls,
        name: str,
        split: str = "test",
        audio_column: str = "audio",
        streaming: bool = False,
        config: str | None = None,
    ) -> DatasetSource:
        return cls(
            load_dataset_split(name, split, streaming=streaming, config=config), audio_column, f"{name} [{split}]"
        )

    def describe(self) -> str:
        return self.description

    def iter_inputs(self, wanted: Callable[[int], bool] | None = None) -> Iterator[tuple[ArchiveInput, Any]]:
        if self.countable:
            for index in range(len(self.dataset)):
                if wanted is None or wanted(index):
                    # the payload is read by the loader process that decodes it (random access into arrow)
                    yield ArchiveInput(index, index=index), index
            return
        for index, row in enumerate(self.dataset.select_columns([self.audio_column])):
            if wanted is None or wanted(index):
                yield ArchiveInput(index, index=index), row[self.audio_column]

    def decode(self, payload: Any, sampling_rate: int) -> np.ndarray:
        from ..training.audio_decoding import decode_example_audio

        if isinstance(payload, (int, np.integer)):
            payload = self.dataset[int(payload)][self.audio_column]
        return decode_example_audio(payload, sampling_rate)
