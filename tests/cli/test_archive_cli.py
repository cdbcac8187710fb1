"""`classify` / `detect` over archives: directory trees, list files and datasets as inputs; rows written to
--output (.jsonl, .csv, .parquet); --resume after a SIGKILL gives every input exactly once; 2 processes under
torchrun write the same rows as 1."""

import os
import signal
import subprocess
import sys
import time

import datasets
import numpy as np
import pytest

from spectrogram_transformers.archive import FileSource, read_jsonl, read_rows
from spectrogram_transformers.cli import main as cli_main
from testing_utils.fixtures import REPO_ROOT, free_port
from testing_utils.inference_models import tiny_ast_dir, tiny_htsat_dir, tone_file

RATE = 16000


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    return tiny_ast_dir(tmp_path_factory.mktemp("ast"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """audio/{a.wav 0.5 s, b.wav 2.5 s, notes.txt, sub/c.flac 1.5 s, sub/deeper/d.wav 1.2 s}."""
    root = tmp_path_factory.mktemp("tree") / "audio"
    (root / "sub" / "deeper").mkdir(parents=True)
    tone_file(root / "a.wav", 0.5, frequency=300.0, seed=1)
    tone_file(root / "b.wav", 2.5, frequency=500.0, seed=2)
    tone_file(root / "sub" / "c.flac", 1.5, frequency=700.0, seed=3)
    tone_file(root / "sub" / "deeper" / "d.wav", 1.2, frequency=900.0, seed=4)
    (root / "notes.txt").write_text("not audio")
    return root


def classify(*arguments) -> int:
    return cli_main(["classify", *map(str, arguments), "--num-workers", "0"])


def test_a_directory_tree_is_read_recursively_in_sorted_order_and_glob_filters_it(ast_dir, tree, tmp_path):
    out = tmp_path / "all.jsonl"
    assert classify(tree, "--model", ast_dir, "--output", out, "--top-k", "2") == 0
    rows = list(read_jsonl(out))
    assert [row["path"] for row in rows] == [
        str(tree / name) for name in ("a.wav", "b.wav", "sub/c.flac", "sub/deeper/d.wav")
    ]
    assert [row["duration_s"] for row in rows] == [0.5, 2.5, 1.5, 1.2]
    assert all(len(row["labels"]) == 2 and set(row["labels"][0]) == {"label", "score"} for row in rows)
    assert rows[0]["size"] == (tree / "a.wav").stat().st_size and rows[0]["mtime"] == (tree / "a.wav").stat().st_mtime
    assert not (tmp_path / "all.jsonl.parts").exists() and not (tmp_path / "all.jsonl.errors.jsonl").exists()
    only_wav = tmp_path / "wav.jsonl"
    assert classify(tree, "--glob", "*.wav", "--model", ast_dir, "--output", only_wav) == 0
    assert [row["path"] for row in read_jsonl(only_wav)] == [
        str(tree / name) for name in ("a.wav", "b.wav", "sub/deeper/d.wav")
    ]


def test_a_list_file_gives_its_paths_in_order_and_unreadable_ones_go_to_the_errors_file(
    ast_dir, tree, tmp_path, capsys
):
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# comment\n{tree / 'sub/c.flac'}\n\n{tree / 'missing.wav'}\n{tree / 'notes.txt'}\n{tree / 'a.wav'}\n"
    )
    out = tmp_path / "list.jsonl"
    assert classify(f"@{listing}", "--model", ast_dir, "--output", out, "--windows") == 1  # unreadable inputs: exit 1
    rows = list(read_jsonl(out))
    assert [row["path"] for row in rows] == [str(tree / "sub/c.flac"), str(tree / "a.wav")]
    # --windows: each window's span and labels; a 1.5 s file under a 1.015 s model is two windows
    assert [(window["start"], window["end"]) for window in rows[0]["windows"]] == [(0.0, 1.015), (0.485, 1.5)]
    errors = list(read_jsonl(tmp_path / "list.jsonl.errors.jsonl"))
    assert [error["path"] for error in errors] == [str(tree / "missing.wav"), str(tree / "notes.txt")]
    assert "missing.wav" in errors[0]["error"]
    assert "2 unreadable" in capsys.readouterr().err


def test_the_three_output_formats_hold_the_same_rows(ast_dir, tree, tmp_path):
    rows = {}
    for suffix in (".jsonl", ".csv", ".parquet"):
        out = tmp_path / f"tags{suffix}"
        assert classify(tree, "--model", ast_dir, "--output", out, "--windows") == 0
        rows[suffix] = read_rows(out)
    assert len(rows[".jsonl"]) == 4
    assert rows[".csv"] == rows[".jsonl"]
    assert rows[".parquet"] == rows[".jsonl"]
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "tags.parquet")
    assert str(schema.field("labels").type) == "list<element: struct<label: string, score: double>>"


def test_an_existing_output_is_refused_without_resume(ast_dir, tree, tmp_path, capsys):
    out = tmp_path / "tags.jsonl"
    out.write_text("mine\n")
    assert classify(tree, "--model", ast_dir, "--output", out) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        f"error: {out} exists: add --resume to finish it, or choose another --output (nothing is overwritten unasked)"
    ]
    assert out.read_text() == "mine\n"


def test_a_local_dataset_is_an_input_with_rows_by_index(ast_dir, tree, tmp_path):
    files = [tree / "a.wav", tree / "sub/c.flac", tree / "b.wav"]
    rows = {"audio": [{"bytes": path.read_bytes(), "path": None} for path in files], "label": [0, 1, 2]}
    # audio stored as {bytes, path} structs, then typed Audio(decode=False) (encoding through Audio needs torchcodec)
    features = datasets.Features(
        {
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "label": datasets.Value("int64"),
        }
    )
    split = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", datasets.Audio(decode=False))
    datasets.DatasetDict({"test": split, "train": split.select([0])}).save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "rows.jsonl"
    assert (
        cli_main(
            [
                "classify",
                "--dataset",
                str(tmp_path / "saved"),
                "--split",
                "test",
                "--model",
                str(ast_dir),
                "--output",
                str(out),
                "--num-workers",
                "2",
            ]
        )
        == 0
    )
    by_index = list(read_jsonl(out))
    assert [row["index"] for row in by_index] == [0, 1, 2]
    assert classify(*files, "--model", ast_dir, "--output", tmp_path / "files.jsonl") == 0
    by_path = list(read_jsonl(tmp_path / "files.jsonl"))
    for dataset_row, file_row in zip(by_index, by_path):
        assert dataset_row["duration_s"] == file_row["duration_s"]
        np.testing.assert_allclose(
            [pair["score"] for pair in dataset_row["labels"]],
            [pair["score"] for pair in file_row["labels"]],
            rtol=1e-6,
        )


def test_detect_writes_its_events_per_row(tmp_path, tree):
    model = tiny_htsat_dir(tmp_path / "htsat")
    out = tmp_path / "events.jsonl"
    assert (
        cli_main(
            [
                "detect",
                str(tree),
                "--model",
                str(model),
                "--output",
                str(out),
                "--threshold",
                "0.3",
                "--num-workers",
                "0",
            ]
        )
        == 0
    )
    rows = list(read_jsonl(out))
    assert len(rows) == 4 and all(row["source"] == "frames" for row in rows)
    assert all(set(event) == {"label", "start", "end", "score"} for row in rows for event in row["events"])
    assert any(row["events"] for row in rows)


def _environment() -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def test_a_run_killed_mid_way_then_resumed_gives_every_input_exactly_once(ast_dir, tmp_path):
    """The run blocks on a named pipe in the middle of its list (it waits for a writer that never comes) after
    writing the rows before it, is killed with SIGKILL, and a torn line is appended to its part as a kill mid-write
    leaves it; the same command with --resume (the pipe replaced by a real file) finishes the rest."""
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = [tone_file(folder / f"{index:02d}.wav", 0.3 + 0.1 * index, seed=index) for index in range(8)]
    blocker = folder / "04.wav"
    blocker.unlink()
    os.mkfifo(blocker)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in paths))
    out = tmp_path / "tags.jsonl"
    command = [
        sys.executable,
        "-m",
        "spectrogram_transformers",
        "classify",
        f"@{listing}",
        "--model",
        str(ast_dir),
        "--output",
        str(out),
        "--flush-rows",
        "1",
        "--num-workers",
        "0",
    ]
    process = subprocess.Popen(command, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = tmp_path / "tags.jsonl.parts" / "rank-00000.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not part.exists() or part.read_text().count("\n") < 4):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [row["path"] for row in read_jsonl(part)] == [str(path) for path in paths[:4]]
    with open(part, "a") as torn:
        torn.write('{"path": "' + str(paths[4]))  # a line cut short by the kill
    assert not out.exists()
    blocker.unlink()
    tone_file(blocker, 0.7, seed=4)
    resumed = subprocess.run(command + ["--resume"], env=_environment(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "4 already done" in resumed.stderr
    rows = list(read_jsonl(out))
    assert [row["path"] for row in rows] == [str(path) for path in paths]
    # the same rows as a run that was never interrupted
    clean = tmp_path / "clean.jsonl"
    assert classify(f"@{listing}", "--model", ast_dir, "--output", clean) == 0
    assert rows == list(read_jsonl(clean))


@pytest.mark.slow
def test_two_processes_under_torchrun_write_the_rows_of_one(ast_dir, tree, tmp_path):
    """Two gloo ranks, each with a loader process: the merged OUT equals the single-process OUT row for row."""
    extra = tmp_path / "extra"
    extra.mkdir()
    for index in range(5):
        tone_file(extra / f"e{index}.wav", 0.4 + 0.6 * index, seed=10 + index)
    single = tmp_path / "single.jsonl"
    assert classify(tree, extra, "--model", ast_dir, "--output", single, "--windows") == 0
    double = tmp_path / "double.jsonl"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "spectrogram_transformers", "classify", str(tree), str(extra), "--model", str(ast_dir),
        "--output", str(double), "--windows", "--num-workers", "1",
    ]  # fmt: skip
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert list(read_jsonl(double)) == list(read_jsonl(single))
    assert len(list(read_jsonl(single))) == 9


@pytest.mark.slow
def test_two_processes_under_accelerate_launch_detect_the_events_of_one(tree, tmp_path):
    """`accelerate launch` (two CPU processes: `--multi_gpu --num_processes 2`, as docs/training.md explains) sets the
    same rank variables as torchrun: each process detects its share, the first merges, the rows equal one
    process's, and the summary counts every file once."""
    model = tiny_htsat_dir(tmp_path / "htsat")
    extra = tmp_path / "extra"
    extra.mkdir()
    for index in range(3):
        tone_file(extra / f"e{index}.wav", 0.6 + 0.9 * index, frequency=400.0 + 150 * index, seed=20 + index)
    detect = ["detect", str(tree), str(extra), "--model", str(model), "--threshold", "0.3"]
    single = tmp_path / "single.jsonl"
    assert cli_main([*detect, "--output", str(single), "--num-workers", "0"]) == 0
    double = tmp_path / "double.jsonl"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--main_process_port", str(free_port()), "-m", "spectrogram_transformers",
        *detect, "--output", str(double), "--num-workers", "1",
    ]  # fmt: skip
    # no user accelerate config may change what the flags mean
    environment = {**_environment(), "ACCELERATE_CONFIG_FILE": str(tmp_path / "no_accelerate_config.yaml")}
    result = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = list(read_jsonl(double))
    assert rows == list(read_jsonl(single))
    assert len(rows) == 7 and any(row["events"] for row in rows)
    assert result.stderr.count("7 input(s),") == 1, result.stderr[-2000:]  # one summary, from the first process
    assert not (tmp_path / "double.jsonl.parts").exists()


def test_shares_are_balanced_by_bytes_and_cover_every_input_once(tree):
    from spectrogram_transformers.archive import assign_shares

    items = [item for item, _ in FileSource([tree]).iter_inputs()]
    shares = [assign_shares(items, rank, 2) for rank in range(2)]
    assert sorted(position for share in shares for position in share.positions) == list(range(4))
    loads = [sum(items[position].size for position in share.positions) for share in shares]
    assert max(loads) - min(loads) <= max(item.size for item in items)


@pytest.mark.parametrize("world_size", [2, 3, 8])
def test_the_deal_is_balanced_whatever_the_listing_order(world_size):
    """The benchmark's case: files of 1 s to 2 min whose largest comes last in the listing. Dealt in listing order,
    one of two ranks got 75 % of the bytes (2 processes ran 1.32x faster than 1, not 2x); dealt largest first, no
    rank has more than its fair share plus the smallest file."""
    from spectrogram_transformers.archive import assign_shares
    from spectrogram_transformers.archive.inputs import ArchiveInput

    sizes = [int(size) for size in np.geomspace(1_000, 128_000, 8 * world_size)]  # smallest first, largest last
    items = [
        ArchiveInput(position, path=f"{position}.flac", size=size, mtime=0.0) for position, size in enumerate(sizes)
    ]
    shares = [assign_shares(items, rank, world_size) for rank in range(world_size)]
    assert sorted(position for share in shares for position in share.positions) == list(range(len(items)))
    loads = [sum(sizes[position] for position in share.positions) for share in shares]
    assert max(loads) <= max(sum(sizes) / world_size + min(sizes), max(sizes))
    # the deal is a function of the listing alone: done inputs are dealt too, only left out of the share
    done = {items[position].resume_key for position in shares[0].positions[:2]}
    resumed = assign_shares(items, 0, world_size, done)
    assert list(resumed.positions) == list(shares[0].positions[2:])
    assert resumed.already_done == 2 and resumed.total_inputs == len(items) - 2


def test_inputs_of_unknown_size_are_dealt_round_robin_beside_sized_files():
    from spectrogram_transformers.archive import assign_shares
    from spectrogram_transformers.archive.inputs import ArchiveInput

    items = [ArchiveInput(position, index=position) for position in range(5)]
    items.append(ArchiveInput(5, path="big.flac", size=10_000, mtime=0.0))
    shares = [assign_shares(items, rank, 2) for rank in range(2)]
    assert [list(share.positions) for share in shares] == [[0, 2, 4, 5], [1, 3]]
    assert shares[0].total_bytes is None and shares[0].total_inputs == 6


def test_files_longer_than_the_stream_threshold_are_streamed_with_the_same_rows(ast_dir, tree, tmp_path, monkeypatch):
    whole = tmp_path / "whole.jsonl"
    assert classify(tree, "--model", ast_dir, "--output", whole, "--windows") == 0
    htsat = tiny_htsat_dir(tmp_path / "htsat")
    detect = ["detect", str(tree), "--model", str(htsat), "--threshold", "0.3", "--top-k", "3"]
    whole_events = tmp_path / "whole_events.jsonl"
    assert cli_main([*detect, "--output", str(whole_events), "--num-workers", "0"]) == 0
    # b.wav (2.5 s), c.flac (1.5 s) and d.wav (1.2 s) are now streamed in the main process; a.wav (0.5 s) is not
    monkeypatch.setenv("SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN", "1")
    streamed = tmp_path / "streamed.jsonl"
    assert (
        cli_main(
            [
                "classify",
                str(tree),
                "--model",
                str(ast_dir),
                "--output",
                str(streamed),
                "--windows",
                "--num-workers",
                "1",
            ]
        )
        == 0
    )
    assert list(read_jsonl(streamed)) == list(read_jsonl(whole))
    streamed_events = tmp_path / "streamed_events.jsonl"
    assert cli_main([*detect, "--output", str(streamed_events), "--num-workers", "0"]) == 0
    assert list(read_jsonl(streamed_events)) == list(read_jsonl(whole_events))


def test_a_ten_minute_file_is_classified_in_memory_far_below_its_decoded_size(ast_dir, tmp_path, monkeypatch):
    import tracemalloc

    import soundfile

    silence = tmp_path / "silence.flac"
    with soundfile.SoundFile(silence, "w", RATE, 1, format="FLAC") as handle:
        for _ in range(10):
            handle.write(np.zeros(RATE * 60, dtype=np.float32))
    monkeypatch.setenv("SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN", "60")
    out = tmp_path / "silence.jsonl"
    tracemalloc.start()
    try:
        assert classify(silence, "--model", ast_dir, "--output", out) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [row["duration_s"] for row in read_jsonl(out)] == [600.0]
    assert peak < 20_000_000  # decoded whole, the 600 s at 16 kHz alone would be 38.4 MB of float32 (78 MB peak)
