"""The demo's analysis (same numbers as `classify` and `detect`), its messages for bad uploads, the `demo`
command's options and errors, and the Space `app.py`. The page itself is driven in a browser in
test_demo_browser.py."""

import argparse
import json
import re
import runpy
import sys

import numpy as np
import pytest
import soundfile

from spectrogram_transformers.cli import main as cli_main
from spectrogram_transformers.cli.demo import add_arguments, launch_options
from spectrogram_transformers.demo import (
    DEMO_EXTRA_MESSAGE,
    DemoAnalyser,
    build_demo,
    figure_to_array,
)
from testing_utils.fixtures import REPO_ROOT, fixture_path
from testing_utils.tiny_models import KEYWORDS, RATE, save_tiny_ast, save_tiny_htsat


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_models")
    return {"ast": save_tiny_ast(root / "ast"), "htsat": save_tiny_htsat(root / "htsat")}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_uploads")
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    soundfile.write(root / "empty.wav", np.zeros(0, dtype=np.float32), RATE)
    soundfile.write(root / "nan.wav", np.full(RATE, np.nan, dtype=np.float32), RATE, subtype="FLOAT")
    return root


def axes_names(figure):
    return [
        axes.get_label()
        for axes in figure.axes
        if axes.get_label() in ("spectrogram", "probabilities", "events", "top-k")
    ]


def test_labels_are_what_classify_prints(models, capsys):
    clip = fixture_path("audio/mix_3s_16k.wav")
    analysis = DemoAnalyser(models["ast"], top_k=3).analyse(clip)
    assert not analysis.message and analysis.duration == pytest.approx(3.0)
    assert cli_main(["classify", str(clip), "--model", str(models["ast"]), "--top-k", "3", "--json"]) == 0
    (printed,) = json.loads(capsys.readouterr().out)
    assert [label for label, _ in analysis.labels] == [label for label, _ in printed["labels"]]
    assert [score for _, score in analysis.labels] == pytest.approx(
        [score for _, score in printed["labels"]], abs=1e-6
    )
    short = DemoAnalyser(models["ast"]).analyse(fixture_path("audio/word_go_16k.wav"))
    assert axes_names(short.figure) == ["spectrogram", "top-k"] and short.events == []  # one window: bars only
    pixels = figure_to_array(short.figure)
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3 and pixels.shape[1] >= 600


def test_htsat_events_are_what_detect_prints(models, capsys):
    clip = fixture_path("audio/mix_3s_16k.wav")
    analyser = DemoAnalyser(models["htsat"], threshold=0.52)
    assert analyser.frame_level
    analysis = analyser.analyse(clip)
    assert cli_main(["detect", str(clip), "--model", str(models["htsat"]), "--threshold", "0.52", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)[str(clip)]["events"]
    assert printed, "the tiny model should give some events at this threshold"
    assert [(event["label"], event["start"], event["end"]) for event in analysis.events] == [
        (event["label"], event["start"], event["end"]) for event in printed
    ]
    assert axes_names(analysis.figure) == ["spectrogram", "probabilities", "events"]


def test_long_audio_through_an_ast_gets_the_window_timeline_and_events(models, capsys):
    clip = fixture_path("audio/mix_3s_16k.wav")
    analysis = DemoAnalyser(models["ast"], threshold=0.13).analyse(clip)
    assert cli_main(["detect", str(clip), "--model", str(models["ast"]), "--threshold", "0.13", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)[str(clip)]["events"]
    assert printed and [event["label"] for event in analysis.events] == [event["label"] for event in printed]
    assert axes_names(analysis.figure) == ["spectrogram", "probabilities", "events"]


def test_model_description(models):
    text = DemoAnalyser(models["htsat"]).describe()
    assert "HTS-AT" in text and "16000 Hz" in text and "2 s per window" in text and "multi-label" in text
    assert "HTSATForAudioClassification, torch" in text  # what runs, as classify reports it
    assert f"Labels ({len(KEYWORDS)}):** {', '.join(KEYWORDS)}" in text
    assert "single-label" in DemoAnalyser(models["ast"]).describe()
    # the token-semantic head's time step (8 of the 256 frames of a 2 s clip), as detect states it
    assert "frame outputs: event times to 0.0625 s" in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [("corrupt.wav", "could not decode audio corrupt.wav"), ("empty.wav", "empty"), ("nan.wav", "nan.wav")],
)
def test_bad_uploads_give_a_message(models, bad_files, name, expected):
    analysis = DemoAnalyser(models["ast"]).analyse(bad_files / name)
    assert analysis.message.startswith("Error: ") and expected in analysis.message
    assert str(bad_files) not in analysis.message  # the temporary folder of the upload is not shown
    assert analysis.labels == [] and analysis.figure is None
    assert DemoAnalyser(models["ast"]).analyse(None).message == "Upload or record audio to classify it."


def test_build_demo_makes_a_page_without_launching_it(models):
    import gradio

    demo = build_demo(models["htsat"], top_k=3)
    assert isinstance(demo, gradio.Blocks)
    config = demo.get_config_file()
    ids = {component.get("props", {}).get("elem_id") for component in config["components"]}
    assert {"audio-input", "top-labels", "timeline", "events", "status", "model-info"} <= ids
    assert not demo.analytics_enabled  # nothing is sent anywhere


def parse_demo_args(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_demo_command_passes_gradio_options_through():
    options = launch_options(
        parse_demo_args(["--model", "m", "--port", "9000", "--share", "--auth", "ann:se:cret", "--root-path", "/x"])
    )
    assert options == {
        "server_name": "127.0.0.1",
        "server_port": 9000,
        "share": True,
        "root_path": "/x",
        "auth": ("ann", "se:cret"),
    }
    assert launch_options(parse_demo_args(["--model", "m"]))["share"] is False
    with pytest.raises(SystemExit, match="--auth: expected USER:PASSWORD"):
        launch_options(parse_demo_args(["--model", "m", "--auth", "nobody"]))


def test_demo_command_errors_are_one_line(tmp_path, monkeypatch, capsys):
    assert cli_main(["demo", "--model", str(tmp_path / "no-model")]) == 2
    assert re.match(r"^error: demo: cannot load .*no-model", capsys.readouterr().err)
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the [demo] extra were not installed
    assert cli_main(["demo", "--model", str(tmp_path / "no-model")]) == 2
    assert capsys.readouterr().err == f"error: demo: {DEMO_EXTRA_MESSAGE}\n"


def test_space_app_builds_the_page_of_the_model_named_by_the_environment(models, monkeypatch):
    import gradio

    monkeypatch.setenv("MODEL", str(models["ast"]))
    namespace = runpy.run_path(
        str(REPO_ROOT / "examples" / "space" / "app.py"), run_name="space_app"
    )  # not __main__: no launch
    assert isinstance(namespace["demo"], gradio.Blocks)
    assert namespace["demo"].title == "AST: ast"


def test_audio_longer_than_the_cap_is_refused_from_its_header_before_decoding(models, tmp_path):
    """20 minutes of FLAC silence (a few kB) would decode to 77 MB of float32 at the model's rate: the page refuses
    it from the header, so Python's peak allocation stays far below that."""
    import tracemalloc

    silence = tmp_path / "silence.flac"
    with soundfile.SoundFile(silence, "w", 8000, 1, format="FLAC") as handle:
        for _ in range(20):
            handle.write(np.zeros(8000 * 60, dtype=np.float32))
    analyser = DemoAnalyser(models["ast"])  # default cap: 10 minutes
    tracemalloc.start()
    try:
        analysis = analyser.analyse(silence)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert analysis.message == (
        "Error: silence.flac is 20 minutes long; this page analyses at most 10 minutes of audio (the server's --max-duration)."
    )
    assert analysis.labels == [] and peak < 20_000_000
    short_cap = DemoAnalyser(models["ast"], max_duration=2.0).analyse(fixture_path("audio/mix_3s_16k.wav"))
    assert short_cap.message.startswith(
        "Error: mix_3s_16k.wav is 3 seconds long; this page analyses at most 2 seconds"
    )


def test_the_page_deletes_uploads_and_states_its_limits(models):
    from spectrogram_transformers.demo import UPLOAD_CACHE_CLEANUP

    demo = build_demo(models["ast"], max_duration=90)
    assert demo.delete_cache == UPLOAD_CACHE_CLEANUP == (60, 300)  # Gradio removes uploads older than 5 minutes
    texts = [component.get("props", {}).get("value") for component in demo.get_config_file()["components"]]
    assert (
        "Uploads are deleted from the server 5 to 6 minutes after they arrive. Audio longer than 1.5 minutes is refused."
        in texts
    )
    assert parse_demo_args(["--model", "m"]).max_duration == 600.0
    assert parse_demo_args(["--model", "m", "--max-duration", "30"]).max_duration == 30.0
    for bad in ("0", "-5", "inf", "ten"):
        with pytest.raises(SystemExit):
            parse_demo_args(["--model", "m", "--max-duration", bad])
