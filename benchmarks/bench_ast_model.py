"""AST inference speed: spectrogram_transformers vs transformers' ASTForAudioClassification, same weights.

Prints, in one run on one machine: fp32 SDPA forward time of both at the base size (768 wide, 12 layers,
1024 frames, 527 labels), their ratio, and bf16 autocast on CPU against the fp32 reference, with the
top-1 agreement of bf16 and fp32 on the fixture audio clips.

    python benchmarks/bench_ast_model.py [--batch 2] [--repeats 3] [--threads N]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import ASTConfig as TransformersASTConfig
from transformers import ASTForAudioClassification as TransformersAST

from spectrogram_transformers import convert

FIXTURE_AUDIO = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "audio"


def best_times(functions: list, repeats: int) -> list[float]:
    """Best wall time of each function over `repeats` rounds after one warm-up each.

    The functions run interleaved (one call of each per round), so a load spike on a shared machine
    hits all of them alike; the minimum is the least noisy statistic.
    """
    for function in functions:
        function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, measured in zip(functions, times):
            start = time.perf_counter()
            function()
            measured.append(time.perf_counter() - start)
    return [min(measured) for measured in times]


def fixture_features(feature_extractor, max_length: int) -> torch.Tensor:
    clips = sorted(FIXTURE_AUDIO.glob("*_16k.wav"))
    audio = [soundfile.read(path, dtype="float32")[0] for path in clips]
    return feature_extractor(audio, sampling_rate=16000, return_tensors="pt")["input_values"][:, :max_length]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false", help="skip the bf16 autocast timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    reference = TransformersAST(
        TransformersASTConfig(num_labels=527, num_hidden_layers=args.layers, attn_implementation="sdpa")
    ).eval()
    ours = convert(reference.state_dict(), "hf-ast", None)
    ours.set_attn_implementation("sdpa")
    features = torch.randn(args.batch, 1024, 128)

    with torch.inference_mode():
        difference = (ours(features).logits - reference(features).logits).abs().max().item()

        def ours_bf16():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return ours(features)

        functions = [lambda: reference(features), lambda: ours(features)] + ([ours_bf16] if args.bf16 else [])
        reference_fp32, ours_fp32, *rest = best_times(functions, args.repeats)
        ours_autocast = rest[0] if rest else None

        from spectrogram_transformers.feature_extraction import ASTFeatureExtractor

        clip_features = fixture_features(ASTFeatureExtractor(), 1024)
        top1_fp32 = ours(clip_features).logits.argmax(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            top1_bf16 = ours(clip_features).logits.argmax(-1)

    print(f"AST base, {args.layers} layers, batch {args.batch} x 1024 frames, {args.threads} threads")
    print(f"max |logit difference| ours vs transformers (fp32): {difference:.2e}")
    print(f"transformers ASTForAudioClassification fp32 sdpa : {reference_fp32 * 1000:8.1f} ms")
    print(f"spectrogram_transformers AST fp32 sdpa           : {ours_fp32 * 1000:8.1f} ms   ratio {reference_fp32 / ours_fp32:.2f}x (target >= 1.0x)")
    if ours_autocast is not None:
        print(f"spectrogram_transformers AST bf16 autocast (CPU) : {ours_autocast * 1000:8.1f} ms   ratio {reference_fp32 / ours_autocast:.2f}x vs fp32 reference (target >= 3x)")
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    print(f"CPU bf16 support: avx512_bf16={'avx512_bf16' in flags}, amx_bf16={'amx_bf16' in flags}")
    agree = (top1_fp32 == top1_bf16).float().mean().item()
    print(f"top-1 agreement bf16 vs fp32 on {len(top1_fp32)} fixture clips: {agree:.0%}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
