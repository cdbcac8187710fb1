"""Distribution `spectrogram-transformers`, import name `spectrogram_transformers`.

The repository keeps the design card's top-level folders (`modeling/`, `feature_extraction/`,
`training/`, `hub_configs/`); `package_dir` maps each of them into the one importable package so that
nothing generic such as `modeling` lands in site-packages. Editable installs use the same mapping.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
PACKAGE = "spectrogram_transformers"
# top-level folder -> subpackage of `spectrogram_transformers`
TOP_LEVEL_SUBPACKAGES = ("modeling", "feature_extraction", "training", "hub_configs")


def _discover_packages() -> dict[str, str]:
    """Map every package (folder with an __init__.py) below the mapped folders to its dotted name."""
    package_dir = {}
    for folder in (PACKAGE, *TOP_LEVEL_SUBPACKAGES):
        for init_file in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init_file.parent.relative_to(ROOT)
            if "__pycache__" in relative.parts:
                continue
            parts = relative.parts[1:] if folder == PACKAGE else relative.parts
            package_dir[".".join((PACKAGE, *parts))] = relative.as_posix()
    return package_dir


PACKAGE_DIR = _discover_packages()

# matplotlib for `classify --plot`, `detect --plot` and the figures of `spectrogram_transformers.plotting`
PLOT_REQUIRES = ["matplotlib>=3.7"]
# the offline main job draws one held-out clip's prediction (example_prediction.png), hence PLOT_REQUIRES
TRAIN_REQUIRES = [
    "datasets>=3.0",
    "accelerate>=1.0",
    "evaluate>=0.4",
    "scikit-learn>=1.3",
    "tensorboard>=2.14",
    *PLOT_REQUIRES,
]
# ONNX export (torch.onnx needs `onnx`) and the ONNX Runtime runner with its int8 quantiser
ONNX_REQUIRES = ["onnx>=1.15", "onnxruntime>=1.17"]
# the Gradio app of `spectrogram-transformers demo` (it shows the same plots)
DEMO_REQUIRES = ["gradio>=5.0", *PLOT_REQUIRES]
# LoRA/PEFT adapters: `train --lora` and PeftModel/AutoPeftModel loading (tested with peft 0.21)
LORA_REQUIRES = ["peft>=0.21"]
# the browser test drives Debian's chromium (apt) through Playwright; Playwright's own browser download is not used
TEST_REQUIRES = [
    "pytest>=8.0",
    "ruff>=0.6",
    *TRAIN_REQUIRES,
    *DEMO_REQUIRES,
    *ONNX_REQUIRES,
    *LORA_REQUIRES,
    "playwright>=1.40",
]

setup(
    name="spectrogram-transformers",
    version="0.1.0",
    description="AST, HTS-AT and SSAST audio spectrogram transformers as Hugging Face transformers models",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="BSD-3-Clause",
    python_requires=">=3.10",
    packages=list(PACKAGE_DIR),
    package_dir=PACKAGE_DIR,
    package_data={
        f"{PACKAGE}.hub_configs": ["*/*.json", "labels/*.csv"],
        f"{PACKAGE}.training": ["recipes/*.json"],
        f"{PACKAGE}.metrics": ["*/*.py"],  # evaluate modules, loaded by path (spectrogram_transformers.metrics.path)
    },
    include_package_data=True,
    install_requires=[
        "torch>=2.6",  # transformers 5 disables PyTorch below 2.6; torch.library.custom_op (ONNX export) needs 2.4
        "transformers>=5.2",  # transformers.utils.output_capturing (capture_outputs) first ships in 5.2
        "huggingface-hub>=1.0",
        "numpy>=1.24",
        "safetensors>=0.4",
        "soundfile>=0.12",
        "soxr>=0.3",
    ],
    extras_require={
        "train": TRAIN_REQUIRES,
        "plot": PLOT_REQUIRES,
        "demo": DEMO_REQUIRES,
        "onnx": ONNX_REQUIRES,
        "lora": LORA_REQUIRES,
        "test": TEST_REQUIRES,
    },
    entry_points={"console_scripts": ["spectrogram-transformers = spectrogram_transformers.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Multimedia :: Sound/Audio :: Analysis",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
