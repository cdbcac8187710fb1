"""Inference speed of HTS-AT against AST, both at paper size on 10 s clips with 527 labels, in one process.

HTS-AT (Chen et al., ICASSP 2022) claims a fraction of AST's parameters and compute: its Swin stages attend in
8×8 windows and merge tokens (64² -> 8²), where AST attends globally over 1212 patches at width 768.
This prints both models' parameter counts, fp32 SDPA inference throughput (clips/s, best of N after a warm-up,
`torch.inference_mode`) and the speed ratio (target >= 4x); then each model in bf16 (`model.to(torch.bfloat16)`)
against its own fp32, with the CPU's bf16 flags (bf16 is fast only with AVX512-BF16 or AMX).

    python benchmarks/bench_htsat_vs_ast.py [--batch 4] [--repeats 3] [--threads N] [--device cpu|cuda]

Inputs are what each model sees for a 10 s clip: HTS-AT 1001 log-mel frames × 64 bins (32 kHz, hop 320; the
model stretches them to 1024), AST 1024 Kaldi-fbank frames × 128 bins. Weights are random (speed only).
"""

import argparse
import time

import torch

from spectrogram_transformers import (
    ASTConfig,
    ASTForAudioClassification,
    HTSATConfig,
    HTSATForAudioClassification,
)
from spectrogram_transformers.runtime import describe_cpu

HTSAT_FRAMES_10S = 1001  # 1 + 320000 // 320


def best_times(functions: dict, repeats: int, synchronize) -> dict[str, float]:
    """Best wall time of each function over `repeats` calls after one warm-up each.

    The calls are interleaved (A, B, A, B, ...) so that both models see the same machine load, and the minimum is
    kept, the least noisy statistic on a shared machine.
    """
    best = {}
    for name, function in functions.items():
        function()
        synchronize()
        best[name] = float("inf")
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    htsat = HTSATForAudioClassification(HTSATConfig(num_labels=527, attn_implementation="sdpa")).to(device).eval()
    ast = ASTForAudioClassification(ASTConfig(num_labels=527, attn_implementation="sdpa")).to(device).eval()
    htsat_input = torch.randn(args.batch, HTSAT_FRAMES_10S, htsat.config.num_mel_bins, device=device) * 20 - 40
    ast_input = torch.randn(args.batch, ast.config.max_length, ast.config.num_mel_bins, device=device)

    htsat_bf16 = HTSATForAudioClassification(htsat.config).to(device).eval()
    htsat_bf16.load_state_dict(htsat.state_dict())
    htsat_bf16.to(torch.bfloat16)
    ast_bf16 = ASTForAudioClassification(ast.config).to(device).eval()
    ast_bf16.load_state_dict(ast.state_dict())
    ast_bf16.to(torch.bfloat16)
    functions = {
        "htsat": lambda: htsat(htsat_input),
        "ast": lambda: ast(ast_input),
        "htsat_bf16": lambda: htsat_bf16(htsat_input),
        "ast_bf16": lambda: ast_bf16(ast_input),
    }
    with torch.inference_mode():
        times = best_times(functions, args.repeats, synchronize)
        # bf16 against fp32 on the same inputs: clip probabilities, frame probabilities, top-1
        fp32_out, bf16_out = htsat(htsat_input), htsat_bf16(htsat_input)
    htsat_time, ast_time = times["htsat"], times["ast"]

    where = f"{args.device}, {args.threads} threads" if device.type == "cpu" else args.device
    print(f"10 s clips, batch {args.batch}, fp32, sdpa, inference_mode, best of {args.repeats} interleaved ({where})")
    print(
        f"HTS-AT (96, depths 2-2-6-2, 527 labels): {parameter_count(htsat) / 1e6:6.1f}M parameters, "
        f"{htsat_time * 1000:8.1f} ms/batch, {args.batch / htsat_time:7.2f} clips/s"
    )
    print(
        f"AST-base (768 x 12, 1212 patches)      : {parameter_count(ast) / 1e6:6.1f}M parameters, "
        f"{ast_time * 1000:8.1f} ms/batch, {args.batch / ast_time:7.2f} clips/s"
    )
    print(
        f"HTS-AT speed-up over AST: {ast_time / htsat_time:.2f}x (target >= 4x); "
        f"parameter ratio AST/HTS-AT {parameter_count(ast) / parameter_count(htsat):.2f}x"
    )
    print(f"CPU: {describe_cpu()} (avx512_bf16/amx_bf16: native bf16)")
    clip_change = (torch.sigmoid(bf16_out.logits.float()) - torch.sigmoid(fp32_out.logits)).abs().max().item()
    frame_change = (
        (torch.sigmoid(bf16_out.framewise_logits.float()) - torch.sigmoid(fp32_out.framewise_logits))
        .abs()
        .max()
        .item()
    )
    same_top1 = (bf16_out.logits.float().argmax(-1) == fp32_out.logits.argmax(-1)).float().mean().item()
    print(
        f"HTS-AT bf16 weights: {times['htsat_bf16'] * 1000:8.1f} ms/batch, {htsat_time / times['htsat_bf16']:.2f}x its fp32; "
        f"max |d sigmoid| clip {clip_change:.2e}, frame {frame_change:.2e}; top-1 agreement {same_top1:.0%} (random weights)"
    )
    print(
        f"AST bf16 weights   : {times['ast_bf16'] * 1000:8.1f} ms/batch, {ast_time / times['ast_bf16']:.2f}x its fp32"
    )


if __name__ == "__main__":
    main()
