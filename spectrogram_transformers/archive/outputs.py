"""Rows to OUT (.jsonl, .csv or .parquet), written as they come, resumable, never duplicated.

Each rank appends its rows to its own part file, `OUT.parts/rank-NNNNN.jsonl`, flushed (and fsync'ed) every
`flush_rows` rows, so a crash loses at most the last batch; a kill can tear the last line, which every reader
drops (and a resumed rank cuts off before appending). Unreadable inputs go to `rank-NNNNN.errors.jsonl`. At the
end rank 0 merges the rows of an existing OUT (a resumed run) and of every part into a new OUT in input order,
one row per input (a later row of an input replaces an earlier one), writes `OUT.errors.jsonl`, and removes the
parts. OUT itself is always replaced atomically (written beside it, then renamed), so it is never torn.

Parquet and CSV are written once, at the merge; parts are JSON lines whatever the format (appendable). In CSV
files nested values (labels, windows, events) are JSON text in their cell. The merge holds the rows in memory
(about a few hundred bytes per input without `--windows`).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..inference.errors import InferenceError
from .inputs import resume_key

__all__ = ["FORMATS", "ArchiveOutput", "PartWriter", "read_jsonl", "read_rows", "write_rows"]

FORMATS = (".jsonl", ".csv", ".parquet")
IDENTITY_FIELDS = ("path", "size", "mtime", "index")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write a {type(value).__name__} to a row")


def dump_row(row: dict[str, Any]) -> str:
    return json.dumps(row, default=_json_default, ensure_ascii=False, allow_nan=True)


def read_jsonl(path: str | os.PathLike, *, repair: bool = False) -> Iterator[dict[str, Any]]:
    """Rows of a JSON-lines file; a last line torn by a kill (no newline, or not JSON) is dropped, and with
    `repair` cut off the file so that appending starts on a clean line."""
    path = Path(path)
    if not path.exists():
        return
    good_end = 0
    with open(path, "rb") as lines:
        for line in lines:
            if not line.endswith(b"\n"):
                break  # torn: the writer died mid-line
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            good_end += len(line)
            yield row
    if repair and good_end != path.stat().st_size:
        with open(path, "r+b") as file:
            file.truncate(good_end)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row of a finished OUT in any of the three formats."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(read_jsonl(path))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    rows = []
    with open(path, newline="", encoding="utf-8") as file:
        for record in csv.DictReader(file):
            row = {}
            for key, cell in record.items():
                if key == "path" or cell == "":
                    row[key] = cell if cell != "" else None
                    continue
                try:
                    row[key] = json.loads(cell)
                except json.JSONDecodeError:
                    row[key] = cell
            rows.append(row)
    return rows


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (str, int, float, bool)):
        return value
    return dump_row(value)


def write_rows(
    path: str | os.PathLike, rows: list[dict[str, Any]], parquet_types: dict[str, Any] | None = None
) -> None:
    """Write rows to `path` in the format of its suffix, atomically (a temporary file beside it, then renamed)."""
    path = Path(path)
    suffix = path.suffix.lower()
    temporary = path.with_name(f".{path.name}.tmp")
    if suffix == ".jsonl":
        with open(temporary, "w", encoding="utf-8") as file:
            for row in rows:
                file.write(dump_row(row) + "\n")
    elif suffix == ".csv":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with open(temporary, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({key: _csv_cell(row.get(key)) for key in columns})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([json.loads(dump_row(row)) for row in rows]) if rows else pa.table({})
        for name, data_type in (parquet_types or {}).items():
            if name in table.column_names:
                index = table.column_names.index(name)
                table = table.set_column(index, pa.field(name, data_type), table.column(name).cast(data_type))
        pq.write_table(table, temporary)
    os.replace(temporary, path)


class PartWriter:
    """Appends rows to a JSON-lines part file, flushing to disk every `flush_rows` rows (and on `flush`)."""

    def __init__(self, path: str | os.PathLike, flush_rows: int = 32):
        self.path = Path(path)
        for _ in read_jsonl(self.path, repair=True):  # cut a torn last line left by a killed run
            pass
        self.file = open(self.path, "a", encoding="utf-8")
        self.flush_rows = max(1, flush_rows)
        self.pending: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(dump_row(row) + "\n")
        if len(self.pending) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.file.write("".join(self.pending))
            self.pending.clear()
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.flush()
        self.file.close()


def _row_identity(row: dict[str, Any]) -> tuple:
    """Which input a row belongs to, whatever version of the file: ("index", i) or ("path", p)."""
    return ("index", row["index"]) if row.get("index") is not None else ("path", row.get("path"))


class ArchiveOutput:
    """OUT and the files beside it: `OUT.parts/` (per-rank parts, progress, done markers) and `OUT.errors.jsonl`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.suffix.lower() not in FORMATS:
            raise InferenceError(f"--output must end in {', '.join(FORMATS)}, got {self.path.name}")
        if self.path.suffix.lower() == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise InferenceError(
                    "--output .parquet needs pyarrow: pip install pyarrow (or use .jsonl / .csv)"
                ) from None
        if not self.path.parent.is_dir():
            raise InferenceError(f"the folder of --output {self.path} does not exist")
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.errors_path = self.path.with_name(self.path.name + ".errors.jsonl")

    def part(self, rank: int, kind: str = "") -> Path:
        return self.parts / f"rank-{rank:05d}{kind}.jsonl"

    def existing_work(self, rank: int, world_size: int) -> str | None:
        """What a run without --resume would overwrite (None: nothing). Rank 0 looks at everything; the others
        at their own part (the others' parts may already be written to by this run)."""
        if self.path.exists():
            return f"{self.path} exists"
        if rank == 0 and self.parts.is_dir() and any(self.parts.glob("rank-*.jsonl")):
            return f"{self.parts} holds the rows of an unfinished run"
        if self.part(rank).exists():
            return f"{self.part(rank)} holds the rows of an unfinished run"
        return None

    def row_files(self) -> list[Path]:
        return sorted(path for path in self.parts.glob("rank-*.jsonl") if not path.name.endswith(".errors.jsonl"))

    def done_keys(self) -> set[int]:
        """Resume keys of the inputs already in OUT or in any part (of any earlier world size)."""
        keys: set[int] = set()
        rows: Iterable[dict] = read_rows(self.path) if self.path.exists() else []
        for row in rows:
            keys.add(resume_key(row))
        for part in self.row_files():
            for row in read_jsonl(part):
                keys.add(resume_key(row))
        return keys

    def merge(self, listing: Iterable[str] | None, parquet_types: dict[str, Any] | None = None) -> int:
        """Rank 0, after every rank is done: OUT (if any) + parts -> OUT in input order (`listing`: the paths in
        order; None: dataset rows, ordered by index), one row per input, then OUT.errors.jsonl; the parts go.
        Returns the number of unreadable inputs of this run."""
        rows: dict[tuple, dict] = {}
        if self.path.exists():
            for row in read_rows(self.path):
                rows[_row_identity(row)] = row
        for part in self.row_files():
            for row in read_jsonl(part):
                rows.pop(_row_identity(row), None)  # a newer row of an input goes where the input is listed
                rows[_row_identity(row)] = row
        ordered: list[dict] = []
        if listing is None:
            ordered = sorted(rows.values(), key=lambda row: row["index"])
        else:
            for path in listing:
                row = rows.pop(("path", path), None)
                if row is not None:
                    ordered.append(row)
            ordered.extend(rows.values())  # rows of inputs no longer listed are kept, after the listed ones
        write_rows(self.path, ordered, parquet_types)
        done = {resume_key(row) for row in ordered}
        errors = {}
        for part in sorted(self.parts.glob("rank-*.errors.jsonl")):
            for row in read_jsonl(part):
                if resume_key(row) not in done:  # an error of a killed run that this run got through is gone
                    errors[_row_identity(row)] = row
        if errors:
            write_rows(self.errors_path, list(errors.values()))
        elif self.errors_path.exists():
            self.errors_path.unlink()
        shutil.rmtree(self.parts, ignore_errors=True)
        return len(errors)
