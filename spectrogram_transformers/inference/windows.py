"""How a clip is cut into the windows a model sees whole."""

from __future__ import annotations

import math


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
