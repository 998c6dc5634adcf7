"""A training run as data: the validated recipe and where its data and outputs are. ``polypwatch train`` parses its
options into one; crossval, the grid and commissioning build theirs in code and call ``engines.lab.training.run.run``
with it. No argv is ever built to start training."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engines.errors import ConfigError
from engines.lab.training.recipe import Recipe, load_recipe


@dataclass(frozen=True)
class TrainJob:
    recipe: Recipe                          # validated at load (engines/lab/training/recipe.py)
    out: Path                               # best.pt, model.onnx, model.pt, metrics.json, inputs.json, PNGs
    recipe_file: str = ""                   # where the recipe came from (recorded in inputs.json)
    data_root: str = ""                     # protocol recipes: the sources; folder recipes: where datasets lie
    holdout_source: str = ""                # protocol recipes: leave this source out entirely
    dataset: tuple[str, ...] = ()           # folder recipes: dataset folders in place of the recipe's
    negatives: tuple[str, ...] = ()         # ... and polyp-free folders
    resume: bool = False                    # continue from out/last.pt
    epochs_now: int = 0                     # at most this many epochs in this call (0 = to the end)
    workers: int = 2                        # processes that render and preprocess training frames
    cache: str = ""                         # cache of preprocessed arrays

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "dataset", tuple(str(d) for d in self.dataset))
        object.__setattr__(self, "negatives", tuple(str(d) for d in self.negatives))
        r = self.recipe
        if r.data == "protocol":
            if self.dataset or self.negatives:
                raise ConfigError("--dataset/--negatives: not with a protocol recipe (data: protocol takes every "
                                  "source under --data-root)")
            if not self.data_root:
                raise ConfigError("--data-root: a protocol recipe (data: protocol) needs the folder of its sources")
        elif self.holdout_source:
            raise ConfigError("--holdout-source: only with a protocol recipe (data: protocol)")
        if self.epochs_now < 0 or self.workers < 0:
            raise ConfigError(f"--epochs-now, --workers: expected 0 or more, got {self.epochs_now}, {self.workers}")

    @classmethod
    def from_recipe_file(cls, recipe_file: str | None, overrides: tuple[str, ...] | list[str] = (), **fields):
        """The job of a recipe file with ``key=value`` overrides (``--set``); ``fields`` as the dataclass's."""
        return cls(recipe=load_recipe(recipe_file, list(overrides)), recipe_file=str(recipe_file or ""), **fields)
