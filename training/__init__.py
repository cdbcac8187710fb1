"""Fine-tuning and evaluation of spectrogram transformers on `transformers.Trainer`.

Modules: `recipe` (recipes as JSON data), `datasets` (loading, label encoding, the batch collator),
`augment` (mixup, SpecAugment, noise, time shift, balanced sampler), `metrics` (accuracy, mAP, mAUC, d-prime),
`train` (the `train` command), `averaging` (checkpoint weight averaging, and the `average` command in
`averaging_cli`), `ensemble` (the `ensemble` command), `model_card`. Import them explicitly; importing this
package imports nothing heavy.
"""
