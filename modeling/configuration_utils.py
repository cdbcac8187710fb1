"""What every config of the package adds to `PreTrainedConfig`."""

__all__ = ["ConsistentLabelsMixin", "PackagePipelineMixin"]


class ConsistentLabelsMixin:
    """Keeps `label2id` the inverse of `id2label`.

    transformers 5 derives `label2id` only when `num_labels` is set: a config built or loaded with `id2label`
    alone (a converted transformers AST, a `config.json` without `label2id`) would keep `label2id=None`, and
    code that reads it (transformers' own export, pipelines' label mapping) fails. Here it is rebuilt whenever
    it is missing or names other labels than `id2label`.
    """

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.id2label is not None and (self.label2id is None or set(self.label2id) != set(self.id2label.values())):
            self.label2id = {label: index for index, label in self.id2label.items()}


class PackagePipelineMixin:
    """The package's own config classes drop `custom_pipelines` when they load a config.json.

    A classifier's saved config.json names the generated pipeline in `custom_pipelines`, for users without this
    package (`pipeline(..., trust_remote_code=True)`). transformers' `pipeline()` insists on `trust_remote_code` for
    any config that lists custom pipelines; with the package installed the pipeline comes from transformers'
    registry instead (registered at import), so the package's classes forget the entry: no prompt, no remote
    code. The generated copy of this class (module `transformers_modules...`) keeps it.
    """

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if type(self).__module__.startswith("spectrogram_transformers."):
            self.__dict__.pop("custom_pipelines", None)
