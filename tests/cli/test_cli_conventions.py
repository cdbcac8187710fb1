"""One command line: kebab-case flags with snake_case aliases, `list`, `--version`, a missing model in one line."""

import argparse
import json
import re
import subprocess
import sys

import pytest

import spectrogram_transformers
from spectrogram_transformers.cli import SUBCOMMANDS, apply_flag_style, build_parser, main


def _parse(argv: list[str]) -> dict:
    values = vars(build_parser([argv[0]]).parse_args(argv))
    values.pop("_run")
    return values


def test_snake_case_spellings_parse_to_the_same_namespace_as_kebab_case():
    kebab = [
        "train",
        "--recipe",
        "esc50",
        "--model",
        "m",
        "--data-dir",
        "d",
        "--dataset-config",
        "c",
        "--synthetic-seed",
        "3",
    ]
    snake = [
        "train",
        "--recipe",
        "esc50",
        "--model",
        "m",
        "--data_dir",
        "d",
        "--dataset_config",
        "c",
        "--synthetic_seed",
        "3",
    ]
    parsed = _parse(kebab)
    assert parsed == _parse(snake)
    assert (parsed["data_dir"], parsed["dataset_config"], parsed["synthetic_seed"]) == (
        "d",
        "c",
        3,
    )  # dests as declared
    kebab = ["classify", "a.wav", "--model", "m", "--batch-size", "3", "--top-k", "2"]
    assert _parse(kebab) == _parse(["classify", "a.wav", "--model", "m", "--batch_size", "3", "--top_k", "2"])


def test_help_shows_kebab_case_only():
    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    for name in SUBCOMMANDS:
        text = subparsers.choices[name].format_help()
        assert not re.findall(r"--[a-z0-9]+_[a-z0-9_]+", text), (name, re.findall(r"--[a-z0-9]+_[a-z0-9_]+", text))
    assert "--data-dir" in subparsers.choices["train"].format_help()


def test_two_options_on_one_spelling_are_refused():
    parser = argparse.ArgumentParser(prog="demo")
    parser.add_argument("--data-dir")
    parser.add_argument("--data_dir", dest="other")
    with pytest.raises(ValueError, match="--data[-_]dir names two options"):
        apply_flag_style(parser)


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"spectrogram-transformers {spectrogram_transformers.__version__}"


def test_list_shows_every_shipped_variant_and_recipe(capsys):
    from spectrogram_transformers.hub_configs import list_variants
    from spectrogram_transformers.training.recipe import list_recipes

    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(listing["variants"]) == list_variants() and sorted(listing["recipes"]) == list_recipes()
    assert (
        listing["variants"]["htsat-tiny-32k-esc50"]
        == "HTS-AT classifier, 50 labels (single-label); embed 96, depths 2-2-6-2; 10 s at 32 kHz"
    )
    assert listing["variants"]["ssast-tiny-patch-400"].startswith("SSAST pre-training; 12 layers x 192")
    assert listing["recipes"]["esc50"].endswith("[AST, HTS-AT]")
    assert main(["list", "recipes"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(list_recipes()) and lines[1].split()[0] == list_recipes()[0]


def test_a_missing_model_is_one_line_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spectrogram_transformers", "classify", "clip.wav", "--model", "does/not/exist"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: does/not/exist: no such directory or Hub id"


# a process in which torch (and so transformers' models) cannot be imported, then the command line
WITHOUT_TORCH = """
import importlib.abc, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            raise ImportError(f"{name} is blocked in this process")

sys.meta_path.insert(0, BlockTorch())
from spectrogram_transformers.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["list", "recipes"]])
def test_help_version_and_list_run_without_torch(argv):
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = {"--help": "classify", "--version": spectrogram_transformers.__version__, "list": "esc50"}[argv[0]]
    assert expected in result.stdout
