"""SSAST pre-training step (forward + backward): batched `SSASTForPreTraining` vs the original's per-sample loops.

    python benchmarks/bench_ssast_pretraining.py                      # base patch model, batch 8, 1024 frames, 400 masked
    python benchmarks/bench_ssast_pretraining.py --size tiny --iters 5

The reference mirrors YuanGongND/ssast `ASTModel.mpc` / `mpg` and `traintest_mask.py`'s `pretrain_joint` on the
same modules and weights: a dense 0/1 mask tensor filled sample by sample and blended with the mask embedding,
targets gathered sample by sample, the prediction heads applied sample by sample, InfoNCE and accuracy computed
sample by sample, and the joint objective as two full forward passes (mpc on one mask, mpg on another).

Measured, in one process, with the same weights and the same masks (the script checks the losses agree):
1. `joint, separate masks`: the original objective both ways. Here both masked copies go through the encoder as
   one batch of 2·B, so the encoder work is the same as the reference's two passes; the difference is the loops.
2. `joint, one shared mask`: this package's `joint_masking="shared"` (one encoder pass feeding both heads) against
   the same reference. Not the same objective (one mask instead of two), so its losses are not compared; it shows
   what the cheaper option buys.
3. `around the encoder`: only the parts the vectorisation changes (mask blend, gathers, heads, losses; forward and
   backward) on fixed encoder outputs, where the loops are the whole cost.
The encoder dominates a full step on CPU, so ratio 1 stays near 1×; ratio 3 isolates the loops.
"""

import argparse
import time

import torch
from torch import nn

from spectrogram_transformers import SSASTConfig, SSASTForPreTraining
from spectrogram_transformers.modeling.ssast.masking import (
    gather_patches,
    patchify_spectrogram,
)
from spectrogram_transformers.modeling.ssast.modeling_ssast import masked_patch_info_nce

SIZES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}


# -- the original's formulation ----------------------------------------------------------------------------------


def reference_encode(model: SSASTForPreTraining, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Patch embedding, per-sample dense 0/1 mask, blend with the mask embedding, encoder (as `mpc`/`mpg`)."""
    tokens = model.ssast.embeddings.embed_patches(x)  # (B, P, D)
    batch_size = x.shape[0]
    mask_dense = torch.ones_like(tokens)
    for i in range(batch_size):
        mask_dense[i, mask[i], :] = 0
    mask_tokens = model.mask_embedding.expand(batch_size, tokens.shape[1], -1)
    tokens = tokens * mask_dense + (1 - mask_dense) * mask_tokens
    embeddings = model.ssast.embeddings.add_prefix_and_positions(tokens, x.shape[1])
    return model.ssast.encode(embeddings, return_dict=True).last_hidden_state


def reference_unfold(model: SSASTForPreTraining, x: torch.Tensor) -> torch.Tensor:
    patch = (model.config.frequency_patch_size, model.config.time_patch_size)
    return nn.Unfold(kernel_size=patch, stride=patch)(x.unsqueeze(1).transpose(2, 3)).transpose(1, 2)


def reference_discriminative_losses(model, hidden, inputs, mask):
    """Per-sample target gather, prediction head and InfoNCE, as `mpc` after the encoder."""
    batch_size, num_masked = mask.shape
    prefix = model.config.num_prefix_tokens
    size = model.config.prediction_size
    encode_samples = torch.empty((batch_size, num_masked, size), device=hidden.device)
    for i in range(batch_size):
        encode_samples[i] = inputs[i, mask[i], :].clone().detach()
    pred = torch.empty((batch_size, num_masked, size), device=hidden.device)
    for i in range(batch_size):
        pred[i] = model.discriminative_head(hidden[i, mask[i] + prefix, :])
    nce = torch.tensor(0.0, device=hidden.device)
    correct = torch.tensor(0.0, device=hidden.device)
    for i in range(batch_size):
        total = torch.mm(encode_samples[i], pred[i].transpose(0, 1))
        correct += torch.sum(
            torch.eq(torch.argmax(torch.softmax(total, dim=-1), dim=0), torch.arange(num_masked, device=hidden.device))
        )
        nce += torch.sum(torch.diag(torch.log_softmax(total, dim=-1)))
    return nce / (-1.0 * batch_size * num_masked), correct / (batch_size * num_masked)


def reference_generative_loss(model, hidden, inputs, mask):
    """Per-sample prediction head and target gather, then the MSE, as `mpg` after the encoder."""
    batch_size, num_masked = mask.shape
    prefix = model.config.num_prefix_tokens
    size = model.config.prediction_size
    pred = torch.empty((batch_size, num_masked, size), device=hidden.device)
    target = torch.empty((batch_size, num_masked, size), device=hidden.device)
    for i in range(batch_size):
        pred[i] = model.generative_head(hidden[i, mask[i] + prefix, :])
        target[i] = inputs[i, mask[i], :]
    return torch.mean((pred - target) ** 2)


def reference_joint_step(model, x, discriminative_mask, generative_mask):
    """`pretrain_joint`: mpc on one masked copy, mpg on another (two forward passes), loss nce + 10·mse."""
    inputs = reference_unfold(model, x)
    nce, accuracy = reference_discriminative_losses(
        model, reference_encode(model, x, discriminative_mask), inputs, discriminative_mask
    )
    mse = reference_generative_loss(model, reference_encode(model, x, generative_mask), inputs, generative_mask)
    loss = nce + 10 * mse
    loss.backward()
    return loss.detach(), nce.detach(), mse.detach(), accuracy


def batched_step(model, x, discriminative_mask, generative_mask=None):
    output = model(x, mask_indices=discriminative_mask, generative_mask_indices=generative_mask)
    output.loss.backward()
    return output.loss.detach(), output.nce_loss.detach(), output.mse_loss.detach(), output.accuracy


# -- the parts around the encoder only ---------------------------------------------------------------------------


def reference_around_encoder(model, tokens, hidden, inputs, mask):
    batch_size = tokens.shape[0]
    mask_dense = torch.ones_like(tokens)
    for i in range(batch_size):
        mask_dense[i, mask[i], :] = 0
    blended = tokens * mask_dense + (1 - mask_dense) * model.mask_embedding.expand(batch_size, tokens.shape[1], -1)
    nce, _ = reference_discriminative_losses(model, hidden, inputs, mask)
    mse = reference_generative_loss(model, hidden, inputs, mask)
    (nce + 10 * mse + blended.sum() * 0).backward()  # the blend's backward is part of the step


def batched_around_encoder(model, tokens, hidden, inputs, mask):
    prefix = model.config.num_prefix_tokens
    is_masked = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device).scatter_(1, mask, True)
    blended = torch.where(is_masked.unsqueeze(-1), model.mask_embedding, tokens)
    masked_hidden = gather_patches(hidden, mask + prefix)
    targets = gather_patches(inputs, mask)
    nce, _ = masked_patch_info_nce(model.discriminative_head(masked_hidden), targets)
    mse = torch.mean((model.generative_head(masked_hidden) - targets) ** 2)
    (nce + 10 * mse + blended.sum() * 0).backward()


# -- timing ------------------------------------------------------------------------------------------------------


def time_steps(step, model, warmup: int, iters: int) -> tuple[float, object, torch.Tensor]:
    """Seconds per step, the last step's result and the patch-projection gradient it left."""
    for _ in range(warmup):
        model.zero_grad(set_to_none=True)
        step()
    start = time.perf_counter()
    for _ in range(iters):
        model.zero_grad(set_to_none=True)
        result = step()
    seconds = (time.perf_counter() - start) / iters
    grad = model.ssast.embeddings.patch_embeddings.projection.weight.grad
    return seconds, result, None if grad is None else grad.clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--masked", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--loop-iters", type=int, default=10, help="iterations of the around-the-encoder comparison")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    width, heads = SIZES[args.size]
    config = SSASTConfig(
        hidden_size=width, num_attention_heads=heads, intermediate_size=4 * width, num_hidden_layers=args.layers,
        max_length=args.frames, num_masked_patches=args.masked,
    )  # fmt: skip
    torch.manual_seed(0)
    model = SSASTForPreTraining(config).train()  # no dropout in the config: train mode is deterministic
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.frames, config.num_mel_bins, generator=generator)
    discriminative_mask = model.draw_mask_indices(args.batch, generator)
    generative_mask = model.draw_mask_indices(args.batch, generator)
    print(
        f"SSAST pre-training step, {args.size} width {width}, {args.layers} layers, batch {args.batch}, {args.frames} frames, "
        f"{config.num_patches} patches, {args.masked} masked, {torch.get_num_threads()} CPU threads; "
        f"{args.warmup} warm-up + {args.iters} timed steps each"
    )

    # the weights never change (no optimizer step), so every timed step sees the same weights and masks
    t_reference, reference, reference_grad = time_steps(
        lambda: reference_joint_step(model, x, discriminative_mask, generative_mask), model, args.warmup, args.iters
    )
    t_separate, batched, batched_grad = time_steps(
        lambda: batched_step(model, x, discriminative_mask, generative_mask), model, args.warmup, args.iters
    )
    # same weights, same masks: the losses and gradients must agree
    for name, a, b in zip(("loss", "nce", "mse", "accuracy"), reference, batched):
        assert abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(a))), (
            f"{name}: reference {float(a)} vs batched {float(b)}"
        )
    torch.testing.assert_close(batched_grad, reference_grad, atol=1e-5, rtol=1e-3)
    print(
        f"losses agree: loss {float(batched[0]):.6f} nce {float(batched[1]):.6f} mse {float(batched[2]):.6f} accuracy {float(batched[3]):.4f}; gradients agree"
    )
    t_shared, _, _ = time_steps(lambda: batched_step(model, x, discriminative_mask), model, args.warmup, args.iters)
    print(f"reference (per-sample loops, two passes)  {t_reference:8.3f} s/step")
    print(
        f"1. joint, separate masks (same objective) {t_separate:8.3f} s/step   ratio {t_reference / t_separate:5.2f}x"
    )
    print(f"2. joint, one shared mask (one pass)      {t_shared:8.3f} s/step   ratio {t_reference / t_shared:5.2f}x")

    # 3. the loops alone, on fixed encoder outputs
    with torch.no_grad():
        tokens = model.ssast.embeddings.embed_patches(x)
        hidden = torch.randn(args.batch, config.num_patches + config.num_prefix_tokens, width, generator=generator)
        inputs = patchify_spectrogram(x, (config.frequency_patch_size, config.time_patch_size))
    tokens.requires_grad_(True)
    hidden.requires_grad_(True)
    t_loop_reference, _, _ = time_steps(
        lambda: reference_around_encoder(model, tokens, hidden, inputs, discriminative_mask), model, 1, args.loop_iters
    )
    t_loop_batched, _, _ = time_steps(
        lambda: batched_around_encoder(model, tokens, hidden, inputs, discriminative_mask), model, 1, args.loop_iters
    )
    print(
        f"3. around the encoder (blend, gathers, heads, losses; fwd+bwd): reference {t_loop_reference * 1e3:8.2f} ms, "
        f"batched {t_loop_batched * 1e3:8.2f} ms   ratio {t_loop_reference / t_loop_batched:5.2f}x"
    )


if __name__ == "__main__":
    main()
