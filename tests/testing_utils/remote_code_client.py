"""Run by tests/test_remote_code.py in a subprocess where `spectrogram_transformers` CANNOT be imported.

Loads package-saved directories with plain `transformers` (`trust_remote_code=True`) through every Auto class
and `pipeline("audio-classification")`, and writes what they produce for the test to compare with the package.
Usage: python remote_code_client.py INPUTS.safetensors OUTPUT_PREFIX THREADS DIR...
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

import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForPreTraining,
    pipeline,
)


def main() -> None:
    inputs_file, output_prefix, threads, *directories = sys.argv[1:]
    torch.set_num_threads(int(threads))
    inputs = load_file(inputs_file)
    tensors, report = {}, {}
    for directory in directories:
        name = directory.rstrip("/").rsplit("/", 1)[-1]
        config = AutoConfig.from_pretrained(directory, trust_remote_code=True)
        entry = {"config_class": type(config).__module__ + "." + type(config).__name__}
        if name.endswith("pretraining"):
            model = AutoModelForPreTraining.from_pretrained(directory, trust_remote_code=True)
            entry["model_class"] = type(model).__name__
            tensors[f"{name}.checksum"] = torch.stack([p.double().sum() for p in model.parameters()])
            report[name] = entry
            continue
        extractor = AutoFeatureExtractor.from_pretrained(directory, trust_remote_code=True)
        waveform = inputs["waveform"].numpy()
        features = extractor(waveform, sampling_rate=16000, return_tensors="pt")
        input_name = next(iter(k for k in features if k.startswith("input_")))
        classifier = AutoModelForAudioClassification.from_pretrained(directory, trust_remote_code=True)
        base = AutoModel.from_pretrained(directory, trust_remote_code=True)
        with torch.no_grad():
            tensors[f"{name}.features"] = features[input_name]
            tensors[f"{name}.logits"] = classifier(features[input_name]).logits
            tensors[f"{name}.pooled"] = base(features[input_name]).pooler_output
        classify = pipeline("audio-classification", model=directory, trust_remote_code=True)
        entry.update(
            model_class=type(classifier).__module__ + "." + type(classifier).__name__,
            base_class=type(base).__name__,
            extractor_class=type(extractor).__module__ + "." + type(extractor).__name__,
            scores=classify({"raw": waveform, "sampling_rate": 16000}, top_k=None),
        )
        report[name] = entry
    report["package_imported"] = any(m.split(".")[0] == "spectrogram_transformers" for m in sys.modules)
    save_file({k: v.contiguous() for k, v in tensors.items()}, f"{output_prefix}.safetensors")
    with open(f"{output_prefix}.json", "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main()
