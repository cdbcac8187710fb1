"""How a clip is cut into the windows a model sees whole."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
from transformers.utils import logging

from .errors import InferenceError

logger = logging.get_logger(__name__)


def window_starts(num_samples: int, window: int, hop: int, *, pad_end: bool = False) -> list[int]:
    """Start samples of the windows covering a clip of `num_samples`.

    Windows start every `hop` samples. `pad_end=False` (classification): the last window is flush with the end of
    the clip, so the tail is never dropped and no window reads past the audio. `pad_end=True` (detection, which
    needs windows on one time grid): windows stay on the grid and the last one may run past the end (the caller
    zero-pads it). A clip no longer than one window is one window.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
    if num_samples <= window:
        return [0]
    if pad_end:
        last = math.ceil((num_samples - window) / hop) * hop  # the first grid start whose window reaches the end
        return list(range(0, last + 1, hop))
    starts = list(range(0, num_samples - window + 1, hop))
    if starts[-1] + window < num_samples:
        starts.append(num_samples - window)
    return starts


def window_and_hop_samples(
    window: float | None, hop: float | None, input_samples: int | None, sampling_rate: int
) -> tuple[int | None, int | None]:
    """(window, hop) in samples for the requested seconds: the window defaults to the model's input
    (`input_samples`) and is never longer than it (a longer window would be cut by the feature extractor, so the
    model would see only its start: it is capped, with a warning); the hop defaults to half a window and never
    exceeds it, so that every sample is seen. (None, None): a model without a fixed input and no window asked,
    i.e. the whole clip."""
    if (window is not None and not window > 0) or (hop is not None and not hop > 0):
        raise InferenceError(f"window and hop must be positive seconds, got {window} and {hop}")
    window_samples = None if window is None else max(1, round(window * sampling_rate))
    if input_samples is not None and (window_samples is None or window_samples > input_samples):
        if window_samples is not None:
            input_seconds = input_samples / sampling_rate
            logger.warning(
                f"window of {window:g} s is longer than the model's input ({input_seconds:.3f} s), which "
                f"would be cut to its first {input_seconds:.3f} s: using {input_seconds:.3f} s windows"
            )
        window_samples = input_samples
    hop_samples = None if hop is None else max(1, round(hop * sampling_rate))
    if hop_samples is None:
        hop_samples = max(1, window_samples // 2) if window_samples is not None else None
    elif window_samples is not None and hop_samples > window_samples:
        logger.warning(
            f"hop of {hop:g} s is longer than the window ({window_samples / sampling_rate:.3f} s), which "
            "would leave audio unseen: using a hop of one window"
        )
        hop_samples = window_samples
    return window_samples, hop_samples


def num_windows(num_samples: int, window: int, hop: int, *, pad_end: bool = False) -> int:
    """`len(window_starts(num_samples, window, hop, pad_end=pad_end))` without listing them."""
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be at least one sample, got {window} and {hop}")
    if num_samples <= window:
        return 1
    if pad_end:
        return math.ceil((num_samples - window) / hop) + 1
    full, rest = divmod(num_samples - window, hop)
    return full + 1 + (1 if rest else 0)


def batches_of_windows(
    windows: Iterable[tuple[int, np.ndarray]],
    batch_size: int,
    *,
    total_windows: int | None = None,
    progress: bool | None = None,
    name: str = "<waveform>",
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """`(starts, pieces)` of `batch_size` windows at a time as the `(start, samples)` windows arrive (e.g. from a
    `WindowStream` over decoded blocks; the last batch may be shorter), behind one tqdm bar that the classifier and
    the embedder share. `total_windows` (when known) sizes the bar, shown by default when there is more than one
    batch."""
    from tqdm.auto import tqdm

    num_batches = None if total_windows is None else math.ceil(total_windows / batch_size)
    show = (num_batches is not None and num_batches > 1) if progress is None else progress
    with tqdm(total=num_batches, disable=not show, desc=name, unit="batch") as bar:
        starts: list[int] = []
        pieces: list[np.ndarray] = []
        for start, piece in windows:
            starts.append(start)
            pieces.append(piece)
            if len(pieces) == batch_size:
                yield starts, pieces
                bar.update()
                starts, pieces = [], []
        if pieces:
            yield starts, pieces
            bar.update()
