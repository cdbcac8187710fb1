"""`spectrogram-transformers embed`: one vector per audio file (and, on request, its token embeddings), for
archives of any size through the archive runner (`spectrogram_transformers.archive`).

    spectrogram-transformers embed recordings/ @more.txt --model DIR --output vectors.parquet [--resume]
    spectrogram-transformers embed --dataset DIR_OR_ID --split test --model DIR --output vectors.parquet --windows
    spectrogram-transformers embed clips/ --model DIR --output vectors.parquet --tokens   # + vectors.parquet.tokens/*.npz
    torchrun --nproc_per_node 4 -m spectrogram_transformers embed recordings/ --model DIR --device cuda --output vectors.parquet

A row holds the input's identity (`path`, `size`, `mtime`, or the dataset `index`), `duration_s` and `embedding`
(the model's `pooler_output`, the mean over windows for files longer than its input; float32, a fixed-size list
column in parquet); `--windows` adds `window_starts` and `window_embeddings`; `--tokens` writes each input's
tokens (windows, time, frequency, hidden) to its own `.npz` in OUT.tokens/ and names it in `tokens_file`.
Without --output the rows are printed as JSON lines. See docs/embeddings.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ._archive import add_archive_arguments, run_task
from ._inference import add_model_arguments, run_reporting_errors

__all__ = ["EmbedTask", "add_arguments", "run", "tokens_folder"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_archive_arguments(parser, "audio files (WAV, FLAC, OGG, MP3, ... via soundfile; other formats via ffmpeg)")
    add_model_arguments(parser, default_batch_size=16)
    parser.add_argument(
        "--window", type=float, default=None, help="window seconds (default and maximum: the model's input length)"
    )
    parser.add_argument("--hop", type=float, default=None, help="seconds between windows (default: half a window)")
    parser.add_argument("--windows", action="store_true", help="rows also hold each window's start and vector")
    parser.add_argument(
        "--short-clip", dest="short_clip", choices=("pad", "crop"), default="pad",
        help="clips shorter than the model's input: pad them to it (default, as in training) or crop the model's input "
        "to the clip (AST/SSAST; docs/embeddings.md)",
    )  # fmt: skip
    parser.add_argument(
        "--tokens", action="store_true",
        help="also write each input's token embeddings (windows, time, frequency, hidden) to OUT.tokens/<n>.npz",
    )  # fmt: skip


def tokens_folder(output: str | os.PathLike) -> Path:
    """Where `--tokens` writes its per-input arrays: beside OUT, named after it."""
    output = Path(output)
    return output.with_name(output.name + ".tokens")


class EmbedTask:
    """The `embed` task for `run_archive`: one decoded input -> `duration_s`, `embedding` [, windows, tokens file]."""

    def __init__(
        self,
        embedder,
        *,
        window: float | None = None,
        hop: float | None = None,
        windows: bool = False,
        short_clip: str = "pad",
        tokens_dir: Path | None = None,
    ):
        self.embedder = embedder
        self.window, self.hop, self.windows, self.short_clip = window, hop, windows, short_clip
        self.tokens_dir = tokens_dir

    @property
    def parquet_types(self) -> dict[str, Any] | None:
        """Column types of a .parquet OUT: fixed-size float32 lists, which datasets, pandas and numpy read as
        arrays of one shape (None without pyarrow, which only parquet needs)."""
        try:
            import pyarrow as pa
        except ImportError:
            return None
        hidden = self.embedder.hidden_size
        return {
            "embedding": pa.list_(pa.float32(), hidden),
            "window_embeddings": pa.list_(pa.list_(pa.float32(), hidden)),
            "window_starts": pa.list_(pa.float64()),
        }

    @property
    def sampling_rate(self) -> int:
        return self.embedder.sampling_rate

    def _tokens_file(self, item) -> Path:
        if item.index is not None:
            return self.tokens_dir / f"row-{item.index:09d}.npz"
        return self.tokens_dir / f"{item.position:09d}-{Path(item.path).stem}.npz"

    def __call__(self, waveform, item) -> dict[str, Any]:
        result = self.embedder.embed(
            waveform, name=item.name, window=self.window, hop=self.hop, tokens=self.tokens_dir is not None,
            short_clip=self.short_clip, progress=False,
        )  # fmt: skip
        return self._row(result, item)

    def from_blocks(self, blocks, item, expected_samples: int | None) -> dict[str, Any]:
        """The same row from a long file's blocks (`run_archive` streams files longer than its limit): windows run
        as the blocks arrive; window vectors are kept only for `windows`, tokens only for `--tokens`."""
        result = self.embedder.embed_blocks(
            blocks, name=item.name, window=self.window, hop=self.hop, tokens=self.tokens_dir is not None,
            short_clip=self.short_clip, progress=False, keep_windows=self.windows, expected_samples=expected_samples,
        )  # fmt: skip
        return self._row(result, item)

    def _row(self, result, item) -> dict[str, Any]:
        import numpy as np

        row: dict[str, Any] = {"duration_s": result.duration, "embedding": result.embedding}
        if self.windows:
            row["window_starts"] = result.window_starts
            row["window_embeddings"] = result.window_embeddings
        if self.tokens_dir is not None:
            path = self._tokens_file(item)
            arrays = {
                "tokens": result.tokens,
                "token_times": result.token_times,
                "window_starts": result.window_starts,
            }
            if result.prefix_tokens is not None:
                arrays["prefix_tokens"] = result.prefix_tokens
            temporary = path.with_name(f".{path.name}.tmp")
            with open(temporary, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary, path)  # a kill never leaves a half-written array under the final name
            row["tokens_file"] = os.path.relpath(path, self.tokens_dir.parent)
            row["token_hop_s"] = result.token_hop_s
        return row


def _print_row(row: dict) -> None:
    from ..archive.outputs import dump_row

    if "error" in row:
        print(f"error: {row['error']}", file=sys.stderr)
        return
    print(dump_row(row), flush=True)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        from ..inference import AudioEmbedder, InferenceError

        tokens_dir = None
        if args.tokens:
            if args.output is None:
                raise InferenceError("--tokens writes one array file per input beside OUT: give --output OUT")
            tokens_dir = tokens_folder(args.output)
            if not args.resume and tokens_dir.exists() and any(tokens_dir.iterdir()):
                raise InferenceError(
                    f"{tokens_dir} holds token arrays of an earlier run: add --resume to finish it, or choose another "
                    "--output (nothing is overwritten unasked)"
                )

        def make_task(device) -> EmbedTask:
            embedder = AudioEmbedder(
                args.model, device=device, batch_size=args.batch_size, dtype=args.dtype, backend=args.backend
            )
            if args.short_clip == "crop" and not embedder.can_crop:
                raise InferenceError(
                    "--short-clip crop needs AST or SSAST: HTS-AT's Swin windows need its whole input image"
                )
            if tokens_dir is not None:
                tokens_dir.mkdir(parents=True, exist_ok=True)
            return EmbedTask(
                embedder,
                window=args.window,
                hop=args.hop,
                windows=args.windows,
                short_clip=args.short_clip,
                tokens_dir=tokens_dir,
            )

        return run_task(args, make_task, _print_row)

    return run_reporting_errors(body)
