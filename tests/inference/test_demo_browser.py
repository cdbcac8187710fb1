"""The demo page in a real browser: `spectrogram-transformers demo` started on a free localhost port, headless
Chromium (Debian's `chromium`, driven by Playwright) uploads a fixture clip and then a corrupt file.

This test FAILS (never skips) when it cannot run: `.ci/run` installs chromium (apt) and Playwright (the
`[test]` extra). Playwright's own browser download is not used; the page must render with no network: every
request that leaves localhost is refused and listed. Screenshots are saved in the test's tmp folder.
"""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from spectrogram_transformers.cli import main as cli_main
from testing_utils.fixtures import fixture_path, free_port
from testing_utils.tiny_models import save_tiny_htsat

pytestmark = pytest.mark.slow  # starts a server and a browser: ~60-90 s for the module on the shared 2-core VM

# Chromium flags for a closed network (no background connections, no QUIC, no GPU) in a container (no sandbox)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium's fake microphone (a beep every half second) for the recording test, allowed without a prompt
FAKE_MICROPHONE_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
SERVER_START_S = 180
RESULT_WAIT_MS = 120_000


def chromium_executable() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.fail("the browser test needs Debian's chromium: apt-get install -y chromium (.ci/run installs it)")
    return path


def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the browser test needs Playwright: pip install -e ".[test]" (.ci/run installs it)')
    return sync_playwright()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_htsat(tmp_path_factory.mktemp("browser_model") / "htsat")


@pytest.fixture(scope="module")
def demo_url(model_dir, tmp_path_factory):
    """`python -m spectrogram_transformers demo --model DIR --port N` running until the module's tests end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("demo_server") / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "spectrogram_transformers", "demo", "--model", str(model_dir), "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"the demo server exited with {server.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the demo server did not answer on {url} within {SERVER_START_S} s:\n{log_path.read_text()}"
                )
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_upload_shows_the_classify_label_and_the_timeline_and_a_bad_file_shows_a_message(
    demo_url, model_dir, tmp_path, capsys
):
    clip = fixture_path("audio/mix_3s_16k.wav")
    assert cli_main(["classify", str(clip), "--model", str(model_dir), "--json"]) == 0
    classify_labels = json.loads(capsys.readouterr().out)[0]["labels"]  # top-5 [label, probability], best first
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEnot really audio" * 50)

    left_localhost = []

    def local_only(route):
        url = route.request.url
        if url.startswith((demo_url, "data:", "blob:")):
            route.continue_()
        else:
            left_localhost.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile: no state from earlier runs
            executable_path=chromium_executable(),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1100},
            locale="en-US",
        )
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            page.goto(demo_url)
            page.wait_for_selector("#model-info", timeout=RESULT_WAIT_MS)
            assert "HTS-AT" in page.inner_text("#model-info") and "16000 Hz" in page.inner_text("#model-info")

            page.set_input_files("#audio-input input[type=file]", str(clip))
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('Analysed')", timeout=RESULT_WAIT_MS
            )
            shown_top_label = page.inner_text("#top-labels [data-testid=label-output-value]").strip()
            assert shown_top_label == classify_labels[0][0]
            # below it the whole top-5 as classify prints it: "label", "NN%" per row, best first
            rows = [line.strip() for line in page.inner_text("#top-labels").splitlines() if line.strip()][-10:]
            shown = list(zip(rows[0::2], rows[1::2]))
            assert [label for label, _ in shown] == [label for label, _ in classify_labels]
            for (_, percent), (_, probability) in zip(shown, classify_labels):
                assert abs(float(percent.rstrip("%")) - 100 * probability) <= 1.0
            timeline = page.locator("#timeline img")
            timeline.wait_for(timeout=RESULT_WAIT_MS)
            width, height = timeline.evaluate("image => [image.naturalWidth, image.naturalHeight]")
            assert width >= 600 and height >= 300  # the figure arrived and decoded
            assert page.locator("#events").is_visible()
            page.screenshot(path=str(tmp_path / "demo_result.png"), full_page=True)

            page.click("#audio-input button[aria-label=Clear]")
            page.set_input_files("#audio-input input[type=file]", str(corrupt))
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('Error')", timeout=RESULT_WAIT_MS
            )
            message = page.inner_text("#status")
            assert "could not decode audio corrupt.wav" in message
            assert page.locator("#top-labels [data-testid=label-output-value]").count() == 0  # the old result is gone
            assert "Traceback" not in page.content()
            page.screenshot(path=str(tmp_path / "demo_error.png"), full_page=True)
        finally:
            browser.close()
    assert left_localhost == [], f"the page tried to reach the network: {left_localhost}"
    for name in ("demo_result.png", "demo_error.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")


def test_recording_from_the_microphone_is_analysed(demo_url, tmp_path):
    """Record 2.5 s from Chromium's fake microphone in the page: the recording is analysed like an upload."""
    from testing_utils.tiny_models import KEYWORDS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium_executable(),
            headless=True,
            args=CHROMIUM_FLAGS + FAKE_MICROPHONE_FLAGS,
            viewport={"width": 1400, "height": 1100},
            locale="en-US",
            permissions=["microphone"],
        )
        try:
            page = browser.new_page()
            page.goto(demo_url)
            page.click("#audio-input button[aria-label='Record audio']")
            page.locator("#audio-input button", has_text="Record").first.click()
            page.wait_for_timeout(2500)
            page.locator("#audio-input button", has_text="Stop").first.click()
            page.wait_for_function(
                "document.querySelector('#status').innerText.match(/Analysed|Error/)", timeout=RESULT_WAIT_MS
            )
            status = page.inner_text("#status")
            page.screenshot(path=str(tmp_path / "demo_recording.png"), full_page=True)
            assert status.startswith("Analysed"), status
            assert 1.0 < float(status.split()[1]) < 30.0  # "Analysed 2.58 s of audio."
            assert page.inner_text("#top-labels [data-testid=label-output-value]").strip() in KEYWORDS
            assert page.locator("#timeline img").evaluate("image => image.naturalWidth") >= 600
        finally:
            browser.close()
