"""Where AST-base inference time goes: per-operator profiles of transformers' AST and ours, and the linear kernels.

Wall clocks on a shared machine swing by tens of percent between rounds; operator profiles of the same clip are
steadier and say WHY one variant is faster. For one 1024-frame clip (batch 1, 2 threads by default, same
weights) this prints the top operators of

  transformers AST fp32 (sdpa)       the reference
  ours fp32, ours bf16 weights       torch.profiler, mean of --rounds profiled calls
  ours ONNX Runtime fp32 / int8      ONNX Runtime's own profiler (skipped without the [onnx] extra)

with each total's ratio to the reference, and then the four linear-layer shapes of AST-base (1,214 tokens)
through `nn.Linear` (BLAS addmm) and through `modeling.linear.Linear` (oneDNN), in GFLOP/s.

    python benchmarks/profile_ast_model.py [--rounds 3] [--threads N] [--skip onnx]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import ASTConfig as TransformersASTConfig
from transformers import ASTForAudioClassification as TransformersAST

from spectrogram_transformers import ASTFeatureExtractor, convert
from spectrogram_transformers.modeling.linear import Linear
from spectrogram_transformers.runtime import describe_cpu

TOKENS = 1214  # 2 prefix tokens + 12 x 101 patches of a 1024-frame AST-base input


def torch_profile(model: torch.nn.Module, features: torch.Tensor, rounds: int) -> collections.Counter:
    """Self CPU milliseconds per operator, mean over `rounds` profiled calls (after one warm-up call)."""
    totals: collections.Counter = collections.Counter()
    with torch.inference_mode():
        model(features)
        for _ in range(rounds):
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
                model(features)
            for event in profile.key_averages():
                totals[event.key] += event.self_cpu_time_total / 1000 / rounds
    return totals


def onnxruntime_profile(model_file: Path, features: np.ndarray, threads: int, rounds: int) -> collections.Counter:
    """Milliseconds per ONNX operator type, mean over `rounds` profiled runs (after one warm-up run)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(model_file.parent / "profile")
    session = onnxruntime.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: features}
    session.run(None, feeds)
    for _ in range(rounds):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter = collections.Counter()
    runs = rounds + 1
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"] / 1000 / runs
    return totals


def print_profile(name: str, totals: collections.Counter, reference_total: float | None, top: int = 6) -> float:
    total = sum(totals.values())
    ratio = f", {reference_total / total:.2f}x the reference" if reference_total else " (the reference)"
    print(f"\n{name}: {total:,.0f} ms per clip{ratio}")
    for operator, milliseconds in totals.most_common(top):
        print(f"    {operator[:48]:48s} {milliseconds:8.1f} ms {100 * milliseconds / total:5.1f} %")
    return total


def linear_kernels(threads: int, repeats: int = 10) -> None:
    """AST-base's four linear shapes, nn.Linear against our oneDNN Linear, fp32 and bf16 (inference mode)."""
    print(f"\nlinear layers at {TOKENS} tokens, {threads} threads (median of {repeats}): nn.Linear vs ours (oneDNN)")
    for dtype in (torch.float32, torch.bfloat16):
        for inputs, outputs in ((768, 2304), (768, 768), (768, 3072), (3072, 768)):
            torch.manual_seed(0)
            reference = torch.nn.Linear(inputs, outputs).to(dtype).eval()
            ours = Linear(inputs, outputs).to(dtype).eval()
            ours.load_state_dict(reference.state_dict())
            tokens = torch.randn(TOKENS, inputs, dtype=dtype)
            flops = 2 * TOKENS * inputs * outputs
            medians = []
            with torch.inference_mode():
                for layer in (reference, ours):
                    layer(tokens)
                    times = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        layer(tokens)
                        times.append(time.perf_counter() - start)
                    medians.append(float(np.median(times)))
            print(
                f"    {str(dtype).removeprefix('torch.'):9s} {inputs:4d} -> {outputs:4d}: nn.Linear {medians[0] * 1e3:6.2f} ms "
                f"({flops / medians[0] / 1e9:4.0f} GFLOP/s), ours {medians[1] * 1e3:6.2f} ms ({flops / medians[1] / 1e9:4.0f} GFLOP/s), "
                f"{medians[0] / medians[1]:.2f}x"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: onnx, linears")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"AST-base, batch 1 x 1024 frames, 527 labels, {args.threads} threads; CPU: {describe_cpu()}")

    reference = TransformersAST(TransformersASTConfig(num_labels=527, attn_implementation="sdpa")).eval()
    ours = convert(reference.state_dict(), "hf-ast", None).eval()
    ours.set_attn_implementation("sdpa")
    features = torch.randn(1, 1024, 128)

    reference_total = print_profile("transformers AST fp32", torch_profile(reference, features, args.rounds), None)
    print_profile("ours fp32", torch_profile(ours, features, args.rounds), reference_total)
    ours_bf16 = convert(reference.state_dict(), "hf-ast", None).eval().to(torch.bfloat16)
    ours_bf16.set_attn_implementation("sdpa")
    print_profile("ours bf16 weights", torch_profile(ours_bf16, features.bfloat16(), args.rounds), reference_total)

    if "onnx" not in skip:
        try:
            from spectrogram_transformers.onnx_export import export_onnx
        except ImportError:
            print("\nONNX profiles skipped: pip install 'spectrogram-transformers[onnx]'")
        else:
            with tempfile.TemporaryDirectory() as scratch:
                model_dir = Path(scratch) / "model"
                ours.save_pretrained(model_dir)
                ASTFeatureExtractor().save_pretrained(model_dir)
                for quantize in (None, "int8"):
                    output = Path(scratch) / f"onnx_{quantize or 'fp32'}"
                    export_onnx(model_dir, output, quantize=quantize)
                    totals = onnxruntime_profile(output / "model.onnx", features.numpy(), args.threads, args.rounds)
                    print_profile(f"ours ONNX Runtime {quantize or 'fp32'}", totals, reference_total)
    if "linears" not in skip:
        linear_kernels(args.threads)


if __name__ == "__main__":
    main()
