"""Speech Commands V2 from the Hub with `datasets` >= 4: the recipe loads the Hub's parquet conversion of
`google/speech_commands` (revision `refs/convert/parquet`, folder `v0.02/<split>/NNNN.parquet`), since the
script dataset itself no longer runs. Tested offline on a local directory laid out like that revision and
given as the dataset id, so the Hub branch of the loader (`load_dataset(id, revision=..., data_dir=config)`)
is the code that runs."""

import datasets
import pytest

from spectrogram_transformers.training.datasets import (
    PARQUET_CONVERSION_REVISION,
    load_recipe_datasets,
)
from spectrogram_transformers.training.recipe import load_recipe
from testing_utils.training import SPEECH_WORDS, write_speech_commands_parquet


def test_recipe_points_at_the_parquet_conversion():
    spec = load_recipe("speech-commands").dataset
    assert (spec.hub_id, spec.hub_config, spec.revision) == (
        "google/speech_commands",
        "v0.02",
        PARQUET_CONVERSION_REVISION,
    )


@pytest.mark.parametrize("streaming", [False, True])
def test_parquet_conversion_layout_loads_with_the_script_datasets_columns(tmp_path, streaming):
    repository = tmp_path / "speech_commands"  # a snapshot of the refs/convert/parquet branch
    write_speech_commands_parquet(repository / "v0.02", words=3, silence=1)
    (repository / "v0.01" / "train").mkdir(parents=True)  # another config's folder must not be read
    (repository / "v0.01" / "train" / "0000.parquet").write_bytes(b"not parquet")

    data = load_recipe_datasets(
        load_recipe("speech-commands").dataset, dataset_id=str(repository), streaming=streaming
    )
    assert data.streaming == streaming
    for split, per_word in ((data.train, 4), (data.eval, 2), (data.test, 2)):
        rows = list(split)
        assert len(rows) == 3 * per_word  # the _silence_ row of each split is excluded, as from the script dataset
        assert set(rows[0]) == {"file", "audio", "label", "is_unknown", "speaker_id", "utterance_id"}
        assert {row["label"] for row in rows} == {0, 1, 2}
    label_feature = data.train.features["label"]
    assert isinstance(label_feature, datasets.ClassLabel) and label_feature.names == SPEECH_WORDS
    assert data.id2label[0] == "yes"


def test_a_missing_config_folder_names_the_data_dir_options(tmp_path):
    repository = tmp_path / "speech_commands"
    write_speech_commands_parquet(repository / "v0.01", words=2)
    with pytest.raises(RuntimeError, match="--data_dir"):
        load_recipe_datasets(load_recipe("speech-commands").dataset, dataset_id=str(repository))
