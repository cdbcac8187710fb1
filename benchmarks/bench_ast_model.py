"""AST inference speed: spectrogram_transformers (PyTorch fp32/bf16, ONNX Runtime fp32/int8) vs transformers' AST.

Same weights everywhere (transformers' ASTForAudioClassification at the base size, converted), AST-base on
1024 frames with 527 labels. In ONE run it times, interleaved round by round (one call of each variant per
round, order rotating, each after a short idle pause so no variant runs while the previous one's worker
threads still spin; a load spike on a shared machine hits all alike) and reports the MEDIAN of the rounds
(and the median of the per-round ratios):

  transformers AST fp32 (sdpa)   the reference, 1.00x
  transformers AST bf16 weights  `model.to(torch.bfloat16)`
  ours fp32 / bf16 weights / bf16 autocast
  ours ONNX Runtime fp32 / dynamic int8   (`export_onnx`, skipped without the [onnx] extra)

and, on the fixture clips, the top-1 agreement and max |Δ sigmoid| of every variant against ours fp32.
It prints the CPU's bf16 flags (lscpu): bf16 is only fast with AVX512-BF16 or AMX.

    python benchmarks/bench_ast_model.py [--batch 1] [--rounds 5] [--threads N] [--layers 12] [--skip onnx,...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import soundfile
import torch
from transformers import ASTConfig as TransformersASTConfig
from transformers import ASTForAudioClassification as TransformersAST

from spectrogram_transformers import convert
from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
from spectrogram_transformers.runtime import describe_cpu

FIXTURE_AUDIO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"


def interleaved_times(
    functions: dict[str, Callable[[], object]], rounds: int, settle: float
) -> dict[str, list[float]]:
    """Wall times of each function over `rounds` interleaved rounds, after one warm-up call each.

    The order rotates every round and each call follows `settle` seconds of idle: ONNX Runtime's and OpenMP's
    worker threads keep spinning for a while after a call, and without the pause they would slow whichever
    variant runs next (in the feature-extraction benchmark they halved the measured speed of our extractor);
    rotating the order spreads whatever remains over all variants.
    """
    for function in functions.values():
        function()
    names = list(functions)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(settle)
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return times


def fixture_features(max_length: int) -> torch.Tensor:
    clips = sorted(FIXTURE_AUDIO.glob("*_16k.wav"))
    audio = [soundfile.read(path, dtype="float32")[0] for path in clips]
    return ASTFeatureExtractor(max_length=max_length)(audio, sampling_rate=16000, return_tensors="pt").input_values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--settle", type=float, default=0.3, help="seconds of idle before each timed call")
    parser.add_argument("--skip", default="", help="comma-separated variants to leave out: onnx, autocast, hf_bf16")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    reference = TransformersAST(
        TransformersASTConfig(num_labels=527, num_hidden_layers=args.layers, attn_implementation="sdpa")
    ).eval()
    ours = convert(reference.state_dict(), "hf-ast", None).eval()
    ours.set_attn_implementation("sdpa")
    ours_bf16 = convert(reference.state_dict(), "hf-ast", None).eval().to(torch.bfloat16)
    ours_bf16.set_attn_implementation("sdpa")
    features = torch.randn(args.batch, 1024, 128)

    def autocast(model):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(features)

        return run

    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "transformers AST fp32": lambda x: reference(x).logits,
        "ours fp32": lambda x: ours(x).logits,
        "ours bf16 weights": lambda x: ours_bf16(x).logits,
    }
    if "hf_bf16" not in skip:
        reference_bf16 = TransformersAST(reference.config).eval()
        reference_bf16.load_state_dict(reference.state_dict())
        reference_bf16.to(torch.bfloat16)
        variants["transformers AST bf16 weights"] = lambda x: reference_bf16(x.to(torch.bfloat16)).logits
    if "autocast" not in skip:

        def ours_autocast(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return ours(x).logits

        variants["ours bf16 autocast"] = ours_autocast
    scratch = tempfile.TemporaryDirectory()
    if "onnx" not in skip:
        try:
            from spectrogram_transformers.onnx_export import OnnxAudioModel, export_onnx
        except ImportError:
            print("ONNX variants skipped: pip install 'spectrogram-transformers[onnx]'")
        else:
            ours.save_pretrained(Path(scratch.name) / "model")
            ASTFeatureExtractor().save_pretrained(Path(scratch.name) / "model")
            for quantize in (None, "int8"):
                output = Path(scratch.name) / f"onnx_{quantize or 'fp32'}"
                export_onnx(Path(scratch.name) / "model", output, quantize=quantize)
                runner = OnnxAudioModel(output, threads=args.threads)
                variants[f"ours ONNX Runtime {quantize or 'fp32'}"] = lambda x, runner=runner: runner(x).logits

    with torch.inference_mode():
        times = interleaved_times(
            {name: (lambda f=f: f(features)) for name, f in variants.items()}, args.rounds, args.settle
        )
        clips = fixture_features(1024)
        outputs = {name: f(clips).float() for name, f in variants.items()}
    scratch.cleanup()

    medians = {name: statistics.median(values) for name, values in times.items()}
    fp32_reference = medians["transformers AST fp32"]
    bf16_reference = medians.get("transformers AST bf16 weights")
    baseline = outputs["ours fp32"]
    print(
        f"AST base, {args.layers} layers, batch {args.batch} x 1024 frames, 527 labels, {args.threads} threads, "
        f"median of {args.rounds} interleaved rounds (shared machine: ratios within this run are what count)"
    )
    print(describe_cpu())
    print(
        f"{'variant':32s} {'ms/batch':>9s} {'vs hf fp32':>10s} {'vs hf bf16':>10s} {'top-1 vs ours fp32':>19s} {'max|d sigmoid|':>15s}"
    )
    for name, median in medians.items():
        agreement = (outputs[name].argmax(-1) == baseline.argmax(-1)).float().mean().item()
        change = (torch.sigmoid(outputs[name]) - torch.sigmoid(baseline)).abs().max().item()
        versus_bf16 = f"{bf16_reference / median:9.2f}x" if bf16_reference else "      n/a"
        print(
            f"{name:32s} {median * 1000:9.1f} {fp32_reference / median:9.2f}x {versus_bf16} "
            f"{agreement:18.0%} {change:15.2e}"
        )
    print(
        f"(top-1 and sigmoid changes over the {len(baseline)} fixture clips; per-round ratios to transformers fp32, "
        "then their median:)"
    )
    for name, values in times.items():
        ratios = [a / b for a, b in zip(times["transformers AST fp32"], values)]
        print(
            f"  {name:32s} "
            + " ".join(f"{ratio:.2f}" for ratio in ratios)
            + f"   median {statistics.median(ratios):.2f}"
        )
    print(
        "targets: ours fp32 >= 1.05x, ours bf16 >= 2.2x, ONNX fp32 >= 1.15x, ONNX int8 >= 2.5x (vs transformers fp32)"
    )


if __name__ == "__main__":
    main()
