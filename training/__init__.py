"""Fine-tuning and evaluation of spectrogram transformers on `transformers.Trainer`.

Modules: `recipe` (recipes as JSON data), `datasets` (loading, label encoding, the batch collator),
`augment` (mixup, SpecAugment, noise, time shift, balanced sampler), `metrics` (accuracy, mAP, mAUC, d-prime),
`train` (fine-tuning runs), `pretrain` (SSAST pre-training), `averaging` (checkpoint weight averaging),
`ensemble` (averaged predictions of several models), `offline_demo` (the offline main job), `model_card`.
Their command lines live in `spectrogram_transformers.cli`. Import them explicitly; importing this package
imports nothing heavy.
"""
