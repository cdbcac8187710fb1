"""Run by tests/inference/test_remote_code_pipeline.py in a subprocess where `spectrogram_transformers` CANNOT be
imported: `pipeline("audio-classification", model=DIR, trust_remote_code=True)` on each input, scores as JSON.

Usage: python remote_pipeline_client.py INPUTS.safetensors OUTPUT.json DIR...
INPUTS.safetensors holds 1-D waveforms named "<name>@<sampling rate>".
"""

import importlib.abc
import json
import sys


class _BlockPackage(importlib.abc.MetaPathFinder):
    """Make the package impossible to import, whatever sys.path or the editable install's finder say."""

    def find_spec(self, name, path=None, target=None):
        if name == "spectrogram_transformers" or name.startswith("spectrogram_transformers."):
            raise ImportError(f"{name} is blocked in this process")


sys.meta_path.insert(0, _BlockPackage())

from safetensors.torch import load_file  # noqa: E402
from transformers import pipeline  # noqa: E402


def main() -> None:
    inputs_file, output_file, *directories = sys.argv[1:]
    inputs = load_file(inputs_file)
    report = {}
    for directory in directories:
        classify = pipeline("audio-classification", model=directory, trust_remote_code=True)
        report[directory] = {"class": type(classify).__module__ + "." + type(classify).__name__}
        for key, waveform in inputs.items():
            rate = int(key.rsplit("@", 1)[1])
            report[directory][key] = classify({"raw": waveform.numpy(), "sampling_rate": rate}, top_k=None)
    report["package_imported"] = any(name.split(".")[0] == "spectrogram_transformers" for name in sys.modules)
    with open(output_file, "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main()
