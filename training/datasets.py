"""The data side of training, one module per job, re-exported here under the names it always had.

- `dataset_loading`: a recipe's splits from the Hub or local files (`load_recipe_datasets`, `RecipeData`).
- `label_encoding`: label values -> class ids / multi-hot (`LabelEncoder`), balanced-sampling weights.
- `audio_decoding`: one example's audio -> mono float32 (`decode_example_audio`), batch padding (`pad_waveforms`).
- `featurizer`: the on-device training stage: crop, mixup, features, SpecAugment (`AugmentedFeaturizer`).
- `collator`: rows -> a model batch, undecodable clips skipped and counted (`AudioClassificationCollator`).
"""

from ..feature_extraction.base import model_input_samples
from .audio_decoding import decode_example_audio, pad_waveforms
from .collator import SKIPPED_CLIPS_KEY, AudioClassificationCollator
from .dataset_loading import (
    AUDIO_EXTENSIONS,
    PARQUET_CONVERSION_REVISION,
    RecipeData,
    load_recipe_datasets,
)
from .featurizer import AugmentedFeaturizer
from .label_encoding import LabelEncoder, training_label_weights

__all__ = [
    "AUDIO_EXTENSIONS",
    "PARQUET_CONVERSION_REVISION",
    "SKIPPED_CLIPS_KEY",
    "AudioClassificationCollator",
    "AugmentedFeaturizer",
    "LabelEncoder",
    "RecipeData",
    "decode_example_audio",
    "load_recipe_datasets",
    "model_input_samples",
    "pad_waveforms",
    "training_label_weights",
]
