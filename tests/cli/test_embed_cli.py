"""`spectrogram-transformers embed --output`: the stored vectors are the models' `pooler_output` (and the token
arrays their `last_hidden_state` in the documented layout) for every family, an SSAST pre-training checkpoint
included; parquet holds fixed-size float32 lists that datasets / pandas / numpy read; --resume after a SIGKILL
writes each input once; 2 processes under torchrun write the rows of one."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

from spectrogram_transformers.archive import read_jsonl, read_rows
from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.inference import AudioEmbedder
from testing_utils.fixtures import REPO_ROOT, free_port
from testing_utils.inference_models import RATE, embedding_model_dirs, tone_file


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    return embedding_model_dirs(tmp_path_factory.mktemp("embed-models"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """audio/{a.wav 0.5 s, b.wav 2.5 s, c.flac 1.2 s}."""
    root = tmp_path_factory.mktemp("embed-audio") / "audio"
    root.mkdir()
    tone_file(root / "a.wav", 0.5, frequency=300.0, seed=1)
    tone_file(root / "b.wav", 2.5, frequency=500.0, seed=2)
    tone_file(root / "c.flac", 1.2, frequency=700.0, seed=3)
    return root


def embed(*arguments) -> int:
    return cli_main(["embed", *map(str, arguments), "--num-workers", "0", "--dtype", "float32"])


@pytest.mark.parametrize("family", ["ast", "ssast", "htsat", "ssast-pretraining"])
def test_stored_vectors_are_the_models_outputs(model_dirs, folder, tmp_path, family):
    directory = model_dirs[family]
    embedder = AudioEmbedder(directory, dtype="float32")
    one_window = tone_file(tmp_path / "one_window.wav", embedder.input_seconds, seed=5)
    out = tmp_path / "vectors.parquet"
    assert embed(folder, one_window, "--model", directory, "--output", out, "--tokens", "--windows") == 0
    rows = {row["path"]: row for row in read_rows(out)}
    assert len(rows) == 4

    # a clip of exactly the model's input: the stored vector is the encoder's pooler_output, float32 exactly
    encoder = AutoModel.from_pretrained(directory).eval()
    features = AutoFeatureExtractor.from_pretrained(directory)(
        embedder.decode(one_window), sampling_rate=RATE, return_tensors="pt"
    )
    with torch.no_grad():
        reference = encoder(**features)
    row = rows[str(one_window)]
    np.testing.assert_allclose(row["embedding"], reference.pooler_output[0].numpy(), rtol=0, atol=1e-6)
    arrays = np.load(out.parent / row["tokens_file"])
    assert arrays["tokens"].shape[0] == 1 and arrays["tokens"].shape[-1] == embedder.hidden_size
    number_of_tokens = arrays["tokens"].shape[1] * arrays["tokens"].shape[2]
    prefix = arrays["prefix_tokens"].shape[1] if "prefix_tokens" in arrays.files else 0
    assert prefix + number_of_tokens == reference.last_hidden_state.shape[1]
    if prefix:
        np.testing.assert_allclose(
            arrays["prefix_tokens"][0], reference.last_hidden_state[0, :prefix].numpy(), rtol=0, atol=1e-6
        )

    # every file: the rows and arrays hold what the Python API gives (whose equality with the model's outputs and
    # token layout tests/inference/test_embeddings.py checks window by window)
    for path in [*sorted(folder.iterdir()), one_window]:
        expected = embedder.embed_file(path, tokens=True)
        row = rows[str(path)]
        np.testing.assert_array_equal(np.asarray(row["embedding"], dtype=np.float32), expected.embedding)
        np.testing.assert_array_equal(
            np.asarray(row["window_embeddings"], dtype=np.float32), expected.window_embeddings
        )
        np.testing.assert_allclose(row["window_starts"], expected.window_starts)
        assert row["duration_s"] == pytest.approx(expected.duration)
        arrays = np.load(out.parent / row["tokens_file"])
        np.testing.assert_array_equal(arrays["tokens"], expected.tokens)
        np.testing.assert_allclose(arrays["token_times"], expected.token_times)
        assert row["token_hop_s"] == pytest.approx(expected.token_hop_s)


def test_parquet_reads_as_fixed_size_vectors(model_dirs, folder, tmp_path):
    import datasets
    import pandas

    out = tmp_path / "vectors.parquet"
    assert embed(folder, "--model", model_dirs["ast"], "--output", out) == 0
    dataset = datasets.Dataset.from_parquet(str(out))
    assert dataset.features["embedding"] == datasets.List(datasets.Value("float32"), length=32)
    matrix = np.stack(pandas.read_parquet(out)["embedding"].to_numpy())
    assert matrix.shape == (3, 32) and matrix.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(dataset.with_format("numpy")["embedding"]), matrix)
    # the same rows as .jsonl
    jsonl = tmp_path / "vectors.jsonl"
    assert embed(folder, "--model", model_dirs["ast"], "--output", jsonl) == 0
    np.testing.assert_array_equal(np.array([row["embedding"] for row in read_jsonl(jsonl)], dtype=np.float32), matrix)


def test_one_line_refusals(model_dirs, folder, tmp_path, capsys):
    out = tmp_path / "vectors.jsonl"
    assert embed(folder, "--model", model_dirs["ast"], "--tokens") == 2
    assert "--tokens writes one array file per input beside OUT" in capsys.readouterr().err
    assert embed(folder, "--model", model_dirs["htsat"], "--output", out, "--short-clip", "crop") == 2
    assert "HTS-AT's Swin windows" in capsys.readouterr().err
    assert not out.exists()
    tokens = tmp_path / "vectors.jsonl.tokens"
    tokens.mkdir()
    (tokens / "000000000-a.npz").write_bytes(b"an earlier run")
    assert embed(folder, "--model", model_dirs["ast"], "--output", out, "--tokens") == 2
    err = capsys.readouterr().err
    assert "holds token arrays of an earlier run" in err and "Traceback" not in err
    assert (tokens / "000000000-a.npz").read_bytes() == b"an earlier run"


def _environment():
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def test_a_killed_run_resumed_writes_each_input_once(model_dirs, tmp_path):
    """The run blocks on a named pipe in the middle of its list after writing the rows (and token arrays) before it,
    is killed with SIGKILL; --resume (the pipe replaced by a real file) writes the rest, each input once."""
    folder = tmp_path / "audio"
    folder.mkdir()
    paths = [tone_file(folder / f"{index:02d}.wav", 0.3 + 0.2 * index, seed=index) for index in range(6)]
    blocker = folder / "03.wav"
    blocker.unlink()
    os.mkfifo(blocker)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in paths))
    out = tmp_path / "vectors.jsonl"
    command = [
        sys.executable, "-m", "spectrogram_transformers", "embed", f"@{listing}", "--model", str(model_dirs["ssast-pretraining"]),
        "--output", str(out), "--tokens", "--flush-rows", "1", "--num-workers", "0", "--dtype", "float32",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = tmp_path / "vectors.jsonl.parts" / "rank-00000.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not part.exists() or part.read_text().count("\n") < 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [row["path"] for row in read_jsonl(part)] == [str(path) for path in paths[:3]]
    assert not out.exists()
    blocker.unlink()
    tone_file(blocker, 0.9, seed=3)
    resumed = subprocess.run(command + ["--resume"], env=_environment(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3 already done" in resumed.stderr
    rows = list(read_jsonl(out))
    assert [row["path"] for row in rows] == [str(path) for path in paths]
    token_files = sorted(path.name for path in (tmp_path / "vectors.jsonl.tokens").iterdir())
    assert token_files == sorted(os.path.basename(row["tokens_file"]) for row in rows) and len(token_files) == 6
    # the same rows as a run that was never interrupted
    clean = tmp_path / "clean.jsonl"
    assert embed(f"@{listing}", "--model", model_dirs["ssast-pretraining"], "--output", clean) == 0
    assert [row["embedding"] for row in rows] == [row["embedding"] for row in read_jsonl(clean)]


@pytest.mark.slow
def test_two_processes_under_torchrun_write_the_rows_of_one(model_dirs, folder, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    for index in range(3):
        tone_file(extra / f"e{index}.wav", 0.4 + 0.7 * index, seed=10 + index)
    single = tmp_path / "single.jsonl"
    assert embed(folder, extra, "--model", model_dirs["htsat"], "--output", single, "--windows") == 0
    double = tmp_path / "double.jsonl"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "spectrogram_transformers", "embed", str(folder), str(extra), "--model", str(model_dirs["htsat"]),
        "--output", str(double), "--windows", "--num-workers", "1", "--dtype", "float32",
    ]  # fmt: skip
    result = subprocess.run(command, env=_environment(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = list(read_jsonl(double))
    assert len(rows) == 6
    assert rows == list(read_jsonl(single))


def test_files_longer_than_the_stream_threshold_are_streamed_with_the_same_rows(
    model_dirs, folder, tmp_path, monkeypatch
):
    """b.wav (2.5 s) and c.flac (1.2 s) are streamed block by block in the main process once the limit is 1 s; the
    rows (vectors, window vectors, tokens) are those of the files decoded whole by a loader process."""
    arguments = [folder, "--model", model_dirs["ast"], "--windows", "--tokens"]
    whole = tmp_path / "whole" / "vectors.jsonl"
    whole.parent.mkdir()
    assert embed(*arguments, "--output", whole) == 0
    monkeypatch.setenv("SPECTROGRAM_TRANSFORMERS_STREAM_LONGER_THAN", "1")
    streamed = tmp_path / "streamed" / "vectors.jsonl"
    streamed.parent.mkdir()
    assert cli_main(["embed", *map(str, arguments), "--output", str(streamed), "--dtype", "float32"]) == 0
    whole_rows, streamed_rows = list(read_rows(whole)), list(read_rows(streamed))
    assert len(whole_rows) == 3
    assert whole_rows == streamed_rows
    for row in whole_rows:
        before = np.load(whole.parent / row["tokens_file"])
        after = np.load(streamed.parent / row["tokens_file"])
        for name in before.files:
            np.testing.assert_array_equal(after[name], before[name])
