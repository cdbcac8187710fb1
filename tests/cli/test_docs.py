"""The README is the front door and the docs stay navigable: the README's test command is the one `.ci/run`
runs, it stays short, it names every subcommand, its offline `detect` recipe runs, and every relative link in
the README and `docs/` reaches a file (and a heading, where it names one)."""

import os
import re
import subprocess
import sys
from pathlib import Path

from testing_utils.fixtures import REPO_ROOT

README = REPO_ROOT / "README.md"
MARKDOWN_PAGES = [README, REPO_ROOT / "CHANGELOG.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """The markdown without its fenced code blocks (links inside code are code, not links)."""
    return FENCE.sub("", text)


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors = set()
    for line in prose(text).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            anchors.add(re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def fenced_block_after(text: str, heading: str) -> str:
    """The first fenced code block after the line `heading`."""
    after = text[text.index(heading + "\n") :]
    match = re.search(r"^```\w*\n(.*?)^```", after, re.MULTILINE | re.DOTALL)
    assert match, f"no code block after {heading!r}"
    return match.group(1)


def test_readme_test_command_is_the_one_ci_runs():
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    ci_command = [line for line in ci_lines if "pytest" in line and not line.startswith("#")]
    assert len(ci_command) == 1, ci_command
    readme_lines = [line.strip() for line in README.read_text().splitlines()]
    assert ci_command[0] in readme_lines, f"README must show .ci/run's test command: {ci_command[0]}"


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README has {len(lines)} lines; the manual belongs in docs/"


def test_readme_names_every_subcommand():
    from spectrogram_transformers.cli import SUBCOMMANDS

    text = README.read_text()
    missing = [name for name in SUBCOMMANDS if f"`spectrogram-transformers {name}`" not in text]
    assert not missing, f"README's table of commands lacks {missing}"


def test_readme_links_every_docs_page():
    text = README.read_text()
    unlinked = [page.name for page in sorted((REPO_ROOT / "docs").glob("*.md")) if f"(docs/{page.name})" not in text]
    assert not unlinked, f"README's documentation list lacks {unlinked}"


def test_docs_state_what_is_true_now():
    for page in MARKDOWN_PAGES:
        text = page.read_text().lower()
        for diary_phrase in ("earlier session", "this session", "checked once by hand"):
            assert diary_phrase not in text, f"{page.relative_to(REPO_ROOT)}: {diary_phrase!r}"


def test_relative_links_resolve():
    broken = []
    for page in MARKDOWN_PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
                continue
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(REPO_ROOT)} -> {target}"
            if not destination.exists():
                broken.append(f"{where}: no such file")
            elif anchor and anchor not in heading_anchors(destination.read_text()):
                broken.append(f"{where}: no such heading")
    assert not broken, "\n".join(broken)


def test_readme_offline_detect_recipe_runs(tmp_path):
    """The README's lines for trying `detect` without a network, run as written (with this venv first on PATH)."""
    script = fenced_block_after(README.read_text(), "### Trying `detect` offline: an HTS-AT with random weights")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "htsat-random" / "model.safetensors").is_file()
    assert re.search(r"^# sweep\.wav: \d+ events? \(frame outputs", result.stdout, re.MULTILINE), result.stdout
