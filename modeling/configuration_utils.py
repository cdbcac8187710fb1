"""What every config of the package adds to `PreTrainedConfig`."""

__all__ = ["ConsistentLabelsMixin"]


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
