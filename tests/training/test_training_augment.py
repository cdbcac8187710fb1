"""Augmentation and sampling: mixup weights, mask widths within bounds, seeded reproducibility, no-op settings."""

import numpy as np
import pytest
import torch

from spectrogram_transformers.training.augment import (
    AugmentationConfig,
    BalancedSampler,
    additive_noise,
    label_frequency_weights,
    mask_along_axis,
    mix,
    mix_waveforms,
    random_crop,
    random_crop_offsets,
    random_roll,
    sample_mixup,
    spec_augment,
)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mixup_weights_and_labels_sum_to_one():
    partner, lam = sample_mixup(64, prob=1.0, alpha=10.0, generator=generator())
    assert partner.shape == lam.shape == (64,)
    assert bool(((lam > 0) & (lam < 1)).all())
    labels = torch.eye(5)[torch.arange(64) % 5]
    mixed = mix(labels, partner, lam)
    torch.testing.assert_close(mixed.sum(dim=1), torch.ones(64))  # lam + (1 - lam)
    # each row holds lam on its own class and 1 - lam on the partner's (or 1 when they coincide)
    own = mixed[torch.arange(64), torch.arange(64) % 5]
    expected = torch.where(partner % 5 == torch.arange(64) % 5, torch.ones(64), lam)
    torch.testing.assert_close(own, expected)


def test_mixup_beta_concentration():
    # Beta(10, 10) has std sqrt(1/84) ~ 0.109 around 0.5; Beta(0.5, 0.5) piles up near 0 and 1
    _, concentrated = sample_mixup(4000, 1.0, 10.0, generator=generator(1))
    _, spread = sample_mixup(4000, 1.0, 0.5, generator=generator(1))
    assert abs(concentrated.mean().item() - 0.5) < 0.02 and abs(concentrated.std().item() - (1 / 84) ** 0.5) < 0.01
    assert ((spread < 0.1) | (spread > 0.9)).float().mean().item() > 0.35


def test_mixup_probability_leaves_the_rest_unmixed():
    partner, lam = sample_mixup(2000, prob=0.3, alpha=10.0, generator=generator(2))
    mixed_fraction = (lam < 1).float().mean().item()
    assert abs(mixed_fraction - 0.3) < 0.04
    values = torch.randn(2000, 7)
    out = mix(values, partner, lam)
    untouched = lam == 1
    torch.testing.assert_close(out[untouched], values[untouched])


def test_mixup_flip_partner_is_the_reversed_batch():
    partner, _ = sample_mixup(5, 1.0, 0.5, partner="flip", generator=generator())
    assert partner.tolist() == [4, 3, 2, 1, 0]


@pytest.mark.parametrize("axis,max_width,num_masks", [("time", 7, 1), ("frequency", 5, 2), ("time", 40, 2)])
def test_mask_widths_within_bounds(axis, max_width, num_masks):
    features = torch.zeros(200, 30, 16)
    masked = mask_along_axis(features, axis, max_width, num_masks, mask_value=1.0, generator=generator(3))
    if axis == "time":
        hit = masked.amax(dim=2)  # (B, T): rows entirely masked
        assert bool((masked.amin(dim=2) == hit).all())  # a masked frame is masked across all bins
        size = 30
    else:
        hit = masked.amax(dim=1)  # (B, F)
        assert bool((masked.amin(dim=1) == hit).all())
        size = 16
    widths = hit.sum(dim=1)
    assert int(widths.max()) <= min(max_width, size) * num_masks
    assert int(widths.max()) > 0 and int(widths.min()) >= 0
    if num_masks == 1:  # one contiguous span
        spans = (hit[:, 1:] != hit[:, :-1]).sum(dim=1) + hit[:, 0] + hit[:, -1]
        assert int(spans.max()) <= 2


def test_spec_augment_per_example_fill_and_zero_width_noop():
    features = torch.randn(4, 50, 8)
    torch.testing.assert_close(spec_augment(features, 0, 0, generator=generator()), features)
    fill = torch.tensor([10.0, 20.0, 30.0, 40.0])
    out = spec_augment(features, 4, 20, mask_value=fill, generator=generator(4))
    changed = out != features
    for row in range(4):
        assert bool((out[row][changed[row]] == fill[row]).all())


def test_seeded_reproducibility():
    features = torch.randn(6, 40, 12)
    runs = []
    for _ in range(2):
        g = generator(123)
        partner, lam = sample_mixup(6, 0.5, 10.0, generator=g)
        out = spec_augment(mix(features, partner, lam), 5, 10, generator=g)
        out = random_roll(additive_noise(out, 0.1, generator=g), 3, generator=g)
        runs.append(out)
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    other = spec_augment(features, 5, 10, generator=generator(124))
    assert not torch.equal(other, spec_augment(features, 5, 10, generator=generator(123)))


def test_global_rng_is_used_without_a_generator():
    torch.manual_seed(7)
    first = sample_mixup(8, 0.5, 10.0)
    torch.manual_seed(7)
    second = sample_mixup(8, 0.5, 10.0)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_random_roll_is_a_per_example_circular_shift():
    values = torch.arange(3 * 10, dtype=torch.float32).view(3, 10, 1).expand(3, 10, 2).contiguous()
    rolled = random_roll(values, 4, dim=1, generator=generator(5))
    for row in range(3):
        shift = [s for s in range(-4, 5) if torch.equal(torch.roll(values[row], s, dims=0), rolled[row])]
        assert shift, f"row {row} is not a roll of at most 4 frames"


def test_additive_noise_bounds():
    features = torch.zeros(100, 20, 4)
    noisy = additive_noise(features, 0.1, generator=generator(6))
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) < 0.1
    assert torch.equal(additive_noise(features, 0.0), features)


def test_random_crop_offsets_bounds():
    lengths = torch.tensor([50, 100, 101, 1000, 20])
    for seed in range(20):
        offsets = random_crop_offsets(lengths, 100, generator(seed))
        assert bool((offsets >= 0).all()) and bool((offsets + 100 <= lengths.clamp_min(100)).all())
        assert offsets[0] == 0 and offsets[1] == 0 and offsets[4] == 0
    assert len({int(random_crop_offsets(lengths, 100, generator(seed))[3]) for seed in range(20)}) > 5


def test_label_frequency_weights_by_hand():
    # counts: class0 3, class1 1 -> weights 1000/3.01 and 1000/1.01; a clip's weight sums its labels'
    labels = np.array([[1, 0], [1, 0], [1, 1]])
    w0, w1 = 1000 / 3.01, 1000 / 1.01
    np.testing.assert_allclose(label_frequency_weights(labels), [w0, w0, w0 + w1])
    np.testing.assert_allclose(label_frequency_weights(np.array([0, 0, 1])), [1000 / 2.01, 1000 / 2.01, 1000 / 1.01])


def test_balanced_sampler_favours_rare_classes_and_replays_epochs():
    weights = label_frequency_weights(np.array([0] * 90 + [1] * 10))
    sampler = BalancedSampler(weights, num_samples=4000, seed=3)
    drawn = np.array(list(sampler))
    assert abs((drawn >= 90).mean() - 0.5) < 0.05  # 10 rare clips drawn as often as 90 frequent ones
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != drawn.tolist()
    replay = BalancedSampler(weights, num_samples=4000, seed=3)
    replay.set_epoch(1)
    assert list(replay) == epoch1  # a resumed run draws the same order for the same epoch


def test_augmentation_config_validation():
    assert not AugmentationConfig.from_dict({}).uses_mixup
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentationConfig.from_dict({"mixup": 0.5})
    with pytest.raises(ValueError, match="mixup_prob"):
        AugmentationConfig(mixup_prob=1.5)
    with pytest.raises(ValueError, match="mask_value"):
        AugmentationConfig(mask_value="zero")
    with pytest.raises(ValueError, match="weights"):
        BalancedSampler([0.0, 0.0])


def test_random_crop_and_waveform_mixup_on_the_padded_batch_match_a_per_clip_reference():
    """The batched (gathered) crop and mixup give what cropping / mixing each clip on its own gives."""
    rng = np.random.default_rng(0)
    clips = [torch.from_numpy(rng.standard_normal(n).astype(np.float32)) for n in (900, 300, 1500, 700)]
    lengths = torch.tensor([len(clip) for clip in clips])
    batch = torch.zeros(4, 1500)
    for row, clip in enumerate(clips):
        batch[row, : len(clip)] = clip
    cropped, cropped_lengths = random_crop(batch, lengths, 800, generator(3))
    offsets = random_crop_offsets(lengths, 800, generator(3))  # the same draw
    assert cropped.shape == (4, 800) and cropped_lengths.tolist() == [800, 300, 800, 700]
    for row, clip in enumerate(clips):
        expected = clip[offsets[row] : offsets[row] + 800]
        assert torch.equal(cropped[row, : len(expected)], expected) and not cropped[row, len(expected) :].any()

    partner, lam = sample_mixup(4, prob=1.0, alpha=10.0, generator=generator(4))
    mixed = mix_waveforms(cropped, cropped_lengths, partner, lam)
    assert mixed.shape == cropped.shape
    for row in range(4):
        own, other = cropped[row, : cropped_lengths[row]], cropped[partner[row]]
        expected = lam[row] * own + (1 - lam[row]) * other[: len(own)]  # the partner cut to the clip's length
        torch.testing.assert_close(mixed[row, : len(own)], expected)
        assert not mixed[row, len(own) :].any()  # padding stays zero


class _DeviceOnlyTensor(torch.Tensor):
    """Stands for audio on an accelerator: any copy of it (or of a tensor computed from it) to the host fails."""

    _HOST_COPIES = frozenset(
        {torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.__array__}
    )

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in cls._HOST_COPIES:
            raise AssertionError(f"audio copied to the host with {func.__name__}")
        if func is torch.Tensor.to and any(
            isinstance(value, (str, torch.device)) and torch.device(value).type == "cpu"
            for value in (*args[1:], *(kwargs or {}).values())
        ):
            raise AssertionError("audio moved to the host with .to('cpu')")
        return super().__torch_function__(func, types, args, kwargs)


@pytest.mark.parametrize("family", ["ast", "htsat"])
def test_the_training_featurizer_never_copies_audio_to_the_host(family):
    """The training step's whole path (crop, waveform or feature mixup, features, masks, noise, shift) on a
    batch whose every derived tensor refuses a host copy; the features come back as such device tensors."""
    from spectrogram_transformers.feature_extraction import (
        ASTFeatureExtractor,
        HTSATFeatureExtractor,
    )
    from spectrogram_transformers.training.featurizer import AugmentedFeaturizer

    if family == "ast":
        extractor = ASTFeatureExtractor(max_length=48)
        augmentation = AugmentationConfig(
            mixup_prob=1.0,
            freq_mask=8,
            time_mask=8,
            mask_value="unnormalized_zero",
            noise_max_scale=0.1,
            time_shift_frames=3,
        )
    else:
        extractor = HTSATFeatureExtractor(clip_samples=16000)
        augmentation = AugmentationConfig(
            mixup_prob=1.0,
            mixup_alpha=0.5,
            mixup_domain="features",
            mixup_partner="flip",
            mixup_labels=False,
            freq_mask=4,
            time_mask=8,
            num_freq_masks=2,
            num_time_masks=2,
            mask_value="mean",
        )
    samples = extractor.input_samples + 5000  # longer than the input: the crop is drawn
    waveforms = torch.randn(3, samples).as_subclass(_DeviceOnlyTensor)
    lengths = torch.tensor([samples, samples - 4000, 9000])  # host tensor, as the trainer keeps them
    labels = torch.eye(3)
    featurizer = AugmentedFeaturizer(extractor, augmentation, generator=generator(0))
    batch = featurizer.from_batch({"waveforms": waveforms, "waveform_lengths": lengths, "labels": labels})
    features = batch[extractor.model_input_names[0]]
    assert isinstance(features, _DeviceOnlyTensor) and features.shape[0] == 3
    assert "waveforms" not in batch and "waveform_lengths" not in batch
    with pytest.raises(AssertionError, match="host"):
        features.cpu()  # the probe works
    # the same draws on a plain tensor give the same features
    plain = AugmentedFeaturizer(extractor, augmentation, generator=generator(0)).from_batch(
        {"waveforms": waveforms.as_subclass(torch.Tensor), "waveform_lengths": lengths, "labels": labels}
    )
    torch.testing.assert_close(
        features.as_subclass(torch.Tensor), plain[extractor.model_input_names[0]], rtol=0, atol=0
    )


def _least_squares_weight(mixed: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> float:
    """The λ for which mixed = λ·own + (1 − λ)·other holds best (mixed − other = λ·(own − other))."""
    direction = (own - other).flatten().double()
    return float(((mixed - other).flatten().double() @ direction) / (direction @ direction))


class _RecordingExtractor:
    """Mixed into a feature extractor: keeps the waveforms that reach feature extraction (the audio after any
    waveform mixup)."""

    def extract(self, waveforms, lengths, *args, **kwargs):
        self.seen = waveforms.clone()
        return super().extract(waveforms, lengths, *args, **kwargs)


@pytest.mark.parametrize("domain", ["waveform", "features"])
def test_mixup_labels_carry_the_weight_applied_to_the_audio(domain):
    """Whatever λ the featurizer applies to clip i and its partner (read back from the audio or features it
    produced, not redrawn), the label it returns is λ·y_i + (1 − λ)·y_partner."""
    from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
    from spectrogram_transformers.training.featurizer import AugmentedFeaturizer

    extractor = type("RecordingASTExtractor", (_RecordingExtractor, ASTFeatureExtractor), {})(max_length=32)
    input_name = extractor.model_input_names[0]
    samples = extractor.input_samples
    waveforms = torch.from_numpy(np.random.default_rng(0).standard_normal((4, samples)).astype(np.float32))
    lengths = torch.full((4,), samples)
    plain = extractor.extract(waveforms, lengths)[input_name]
    augmentation = AugmentationConfig(
        random_crop=False, mixup_prob=1.0, mixup_alpha=2.0, mixup_domain=domain, mixup_partner="flip"
    )
    features, labels = AugmentedFeaturizer(extractor, augmentation, generator=generator(0))(
        waveforms, lengths, torch.eye(4)
    )
    mixed, clean = (extractor.seen, waveforms) if domain == "waveform" else (features, plain)
    weights = []
    for row, partner in enumerate([3, 2, 1, 0]):  # "flip" partners
        lam = _least_squares_weight(mixed[row], clean[row], clean[partner])
        torch.testing.assert_close(mixed[row], lam * clean[row] + (1 - lam) * clean[partner])  # it is a mix
        expected = torch.zeros(4)
        expected[row] += lam
        expected[partner] += 1 - lam
        torch.testing.assert_close(labels[row], expected)
        weights.append(lam)
    assert all(0.0 < lam < 1.0 for lam in weights) and max(abs(lam - 0.5) for lam in weights) > 0.05  # 1 − λ ≠ λ


@pytest.mark.parametrize("domain", ["waveform", "features"])
def test_mixing_a_batch_with_itself_changes_nothing(domain):
    from spectrogram_transformers.feature_extraction import ASTFeatureExtractor
    from spectrogram_transformers.training.featurizer import AugmentedFeaturizer

    extractor = ASTFeatureExtractor(max_length=32)
    samples = extractor.input_samples
    clip = torch.from_numpy(np.random.default_rng(1).standard_normal(samples).astype(np.float32))
    waveforms, lengths = clip.expand(3, samples).contiguous(), torch.full((3,), samples)
    labels = torch.tensor([0.2, 0.0, 0.8]).expand(3, 3).contiguous()
    augmentation = AugmentationConfig(random_crop=False, mixup_prob=1.0, mixup_alpha=2.0, mixup_domain=domain)
    features, mixed_labels = AugmentedFeaturizer(extractor, augmentation, generator=generator(2))(
        waveforms, lengths, labels
    )
    torch.testing.assert_close(
        features, extractor.extract(waveforms, lengths)[extractor.model_input_names[0]], rtol=1e-4, atol=1e-4
    )  # float rounding of λx + (1 − λ)x
    torch.testing.assert_close(mixed_labels, labels)


@pytest.mark.parametrize("axis", ["frequency", "time"])
def test_spec_augment_masks_whole_bins_or_whole_frames(axis):
    """Frequency masks blank whole mel bins across every frame; time masks blank whole frames across every bin."""
    batch, frames, bins = 8, 40, 24
    widths = {"freq_mask": 6, "time_mask": 0} if axis == "frequency" else {"freq_mask": 0, "time_mask": 6}
    masked = (
        spec_augment(torch.zeros(batch, frames, bins), **widths, mask_value=1.0, generator=generator(7)) == 1
    )  # (B, T, F)
    whole_bins, whole_frames = masked.all(dim=1), masked.all(dim=2)  # (B, F), (B, T)
    if axis == "frequency":
        assert bool(whole_bins.any()) and not bool(whole_frames.any())
        assert torch.equal(masked, whole_bins.unsqueeze(1).expand_as(masked))  # nothing masked outside whole bins
    else:
        assert bool(whole_frames.any()) and not bool(whole_bins.any())
        assert torch.equal(masked, whole_frames.unsqueeze(2).expand_as(masked))
