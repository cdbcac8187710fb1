"""Importing the package registers it with transformers through public APIs, lazily, in either import order.

Each check runs in a fresh interpreter: registration depends on what was imported first, which a test process
that already imported everything cannot show.
"""

import json
import os
import subprocess
import sys

import pytest

from testing_utils.tiny_models import save_tiny_ast, save_tiny_htsat

# argv[1]: "package-first" or "transformers-first"; argv[2:]: AST and HTS-AT directories. Prints a JSON report.
CLIENT = """
import json, sys
order, ast_dir, htsat_dir = sys.argv[1:]
if order == "package-first":
    import spectrogram_transformers
    lazy = not any(name in sys.modules for name in ("torch", "transformers"))
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, AutoProcessor, pipeline
else:
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, AutoProcessor, pipeline
    import spectrogram_transformers
    lazy = None
from transformers.pipelines import PIPELINE_REGISTRY
from spectrogram_transformers.pipelines import AudioClassificationPipelineForSpectrogramModels
import numpy as np
entry = PIPELINE_REGISTRY.supported_tasks["audio-classification"]
classify = pipeline("audio-classification", model=ast_dir)
print(json.dumps({
    "lazy": lazy,
    "model": type(AutoModelForAudioClassification.from_pretrained(htsat_dir)).__module__,
    "extractor": type(AutoFeatureExtractor.from_pretrained(htsat_dir)).__module__,
    "processor": type(AutoProcessor.from_pretrained(htsat_dir)).__name__,
    "ast_processor": type(AutoProcessor.from_pretrained(ast_dir)).__name__,
    "pipeline": type(classify).__name__,
    "labels": len(classify({"raw": np.zeros(44100, np.float32), "sampling_rate": 44100}, top_k=None)),
    "registered_through_register_pipeline": getattr(AudioClassificationPipelineForSpectrogramModels, "_registered_impl", {}).get("audio-classification") is entry,
    "default_model_kept": entry["default"]["model"][0],
    "remote_modules": sorted(name for name in sys.modules if name.startswith("transformers_modules")),
}))
"""


@pytest.mark.parametrize("order", ["package-first", "transformers-first"])
def test_registration_in_either_import_order_without_prompt_or_remote_code(tmp_path, order):
    ast_dir = save_tiny_ast(tmp_path / "ast")
    htsat_dir = save_tiny_htsat(tmp_path / "htsat")  # its preprocessor_config.json carries an auto_map
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "warning"}
    # stdin closed: a trust_remote_code prompt would be printed and fail instead of waiting
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, order, str(ast_dir), str(htsat_dir)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=environment,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Do you wish to run the custom code" not in output and "trust_remote_code" not in output
    assert "Overwriting pipeline" not in output
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["lazy"] in (True, None)  # package first: its import brought in neither torch nor transformers
    assert report["model"].startswith("spectrogram_transformers.modeling.htsat")
    assert report["extractor"].startswith("spectrogram_transformers.feature_extraction")
    assert (report["processor"], report["ast_processor"]) == ("HTSATFeatureExtractor", "ASTFeatureExtractor")
    assert report["pipeline"] == "SpectrogramAudioClassificationPipeline" and report["labels"] == 8
    assert report["registered_through_register_pipeline"] is True
    assert report["default_model_kept"] == "superb/wav2vec2-base-superb-ks"
    assert report["remote_modules"] == []


@pytest.mark.parametrize(
    "first_import",
    [
        "spectrogram_transformers.pipelines",
        "spectrogram_transformers.embedding_pipeline",
        "spectrogram_transformers.detection",
    ],
)
def test_a_pipeline_module_imported_first_still_registers_both_tasks(first_import):
    """Each pipeline module imports `transformers.pipelines`, whose registration hook then runs while the module is
    half-defined: it must wait for the module instead of failing with a circular import."""
    client = (
        f"import {first_import}\n"
        "from transformers.pipelines import PIPELINE_REGISTRY\n"
        "tasks = PIPELINE_REGISTRY.supported_tasks\n"
        "print(tasks['audio-classification']['impl'].__name__, 'audio-feature-extraction' in tasks)\n"
    )
    done = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["AudioClassificationPipelineForSpectrogramModels", "True"]
