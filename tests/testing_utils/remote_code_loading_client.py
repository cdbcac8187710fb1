"""Run by tests/models/test_remote_code_loading.py in a subprocess where `spectrogram_transformers` CANNOT be
imported: loads checkpoints of every format the package classes load through the REMOTE-CODE classes (taken from
a package-saved directory with transformers' `get_class_from_dynamic_module`) and writes their outputs.

Usage: python remote_code_loading_client.py CASES.json FEATURES.safetensors OUTPUT.safetensors THREADS
CASES.json: [{"name", "code_dir", "class_ref" ("module.Class"), "checkpoint", "kwargs", "output", "resave"?}]
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

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers.dynamic_module_utils import get_class_from_dynamic_module  # noqa: E402


def main() -> None:
    cases_file, features_file, output_file, threads = sys.argv[1:]
    torch.set_num_threads(int(threads))
    with open(cases_file) as handle:
        cases = json.load(handle)
    features = load_file(features_file)
    outputs = {}
    for case in cases:
        model_class = get_class_from_dynamic_module(case["class_ref"], case["code_dir"])
        model = model_class.from_pretrained(case["checkpoint"], **case["kwargs"]).eval()
        with torch.no_grad():
            outputs[case["name"]] = getattr(model(features[case["name"]]), case["output"]).contiguous()
        outputs[case["name"] + ".module"] = torch.tensor([model_class.__module__.startswith("transformers_modules.")])
        if case.get("resave"):  # saved by the remote code itself: the directory carries that code and loads again
            resaved = case["resave"]
            model.save_pretrained(resaved)
            reloaded = get_class_from_dynamic_module(case["class_ref"], resaved).from_pretrained(resaved).eval()
            with torch.no_grad():
                outputs[case["name"] + ".resaved"] = getattr(
                    reloaded(features[case["name"]]), case["output"]
                ).contiguous()
    assert not any(name.split(".")[0] == "spectrogram_transformers" for name in sys.modules)
    save_file(outputs, output_file)


if __name__ == "__main__":
    main()
