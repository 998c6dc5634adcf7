"""Training recipes: one file per shipped model, every key validated at load, the errors naming the key."""
import dataclasses
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT

from engines.errors import ConfigError
from engines.lab.training.recipe import Recipe, load_recipe

RECIPES = sorted((ROOT / "configs" / "train").glob("*.yaml"))


def test_every_shipped_model_has_its_recipe_and_every_recipe_a_model():
    from engines.runtime.model_files import DEFAULT_MODEL, HISTORY_MODELS
    shipped = {DEFAULT_MODEL.stem, *HISTORY_MODELS}
    assert {p.stem for p in RECIPES} == shipped


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_a_shipped_recipe_names_every_setting(path):
    raw = yaml.safe_load(path.read_text())
    r = load_recipe(path)
    assert set(raw) == {f.name for f in dataclasses.fields(Recipe) if r.applies(f.name)}   # nothing left to a default
    assert r.model_id == path.stem


def test_the_v3_recipe_is_v3s_command_line():
    """Session 9's command (docs/EXPERIMENTS.md): --data-root --synthetic 600 --synthetic-val 200 --input-size 192
    --epochs 8 --samples-per-epoch 4000 --lr 1e-3 --augment strong --message-box 0.5, the rest at the defaults of the
    time; the training loop must get exactly the configuration that command gave it."""
    from engines.runtime.preprocess import PreprocessSpec
    from engines.lab.training.run import train_config
    from engines.lab.training.train import TrainConfig
    r = load_recipe(ROOT / "configs" / "train" / "polypwatch-lite0-v3.yaml")
    then = TrainConfig(epochs=8, batch_size=32, lr=1e-3, seed=0, augment="strong", pretrained=True,
                       spec=PreprocessSpec(input_height=192, input_width=192), samples_per_epoch=4000,
                       backbone="efficientnet-lite0", message_box=0.5)
    assert train_config(r) == then
    assert (r.data, r.mined_per_frame, r.tower_variants, r.synthetic, r.synthetic_val, r.target_specificity) == (
        "protocol", 2, 1, 600, 200, 0.95)


@pytest.mark.parametrize("text, message", [
    ("epochs: 8\nepoch: 3\n", r"epoch: unknown key \(did you mean 'epochs'\?\)"),
    ("lr: fast\n", r"lr: expected a number, got 'fast'"),
    ("epochs: 2.5\n", r"epochs: expected an integer, got 2.5"),
    ("pretrained: 1\n", r"pretrained: expected true or false, got 1"),
    ("message_box: 1.5\n", r"message_box: expected a value in 0.0..1.0, got 1.5"),
    ("augment: heavy\n", r"augment: expected one of \['standard', 'strong'\], got 'heavy'"),
    ("backbone: resnet50\n", r"backbone: expected one of \['efficientnet-lite0'"),
    ("data: protocol\ndatasets: [kvasir-seg]\n", r"datasets: applies to data: folders only; expected it left out"),
    ("data: folders\nsynthetic_val: 10\n", r"synthetic_val: applies to data: protocol only"),
    ("input_size: 200\n", r"input_size: expected a multiple of 16"),
    ("datasets: kvasir-seg\n", r"datasets: expected a list, got 'kvasir-seg'"),
    ("- epochs\n", r"expected a mapping of keys, got list"),
    ("epochs: [\n", r"not valid YAML"),
])
def test_a_bad_recipe_names_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"recipe {re.escape(str(path))}: .*{message}|{message}"):
        load_recipe(path)


def test_overrides_change_one_key_and_are_checked_like_the_file(tmp_path):
    base = ROOT / "configs" / "train" / "polypwatch-lite0-v3.yaml"
    r = load_recipe(base, ["seed=3", "lr=0.0005"])
    assert (r.seed, r.lr, r.epochs) == (3, 0.0005, 8)
    with pytest.raises(ConfigError, match=r"seeds: unknown key \(did you mean 'seed'\?\)"):
        load_recipe(base, ["seeds=3"])
    with pytest.raises(ConfigError, match=r"--set 'seed': expected key=value"):
        load_recipe(base, ["seed"])
    with pytest.raises(ConfigError, match="cannot read"):
        load_recipe(tmp_path / "missing.yaml")


def test_the_digest_names_the_settings_not_the_model_id():
    r = load_recipe(ROOT / "configs" / "train" / "polypwatch-lite0-v3.yaml")
    assert re.fullmatch(r"[0-9a-f]{16}", r.digest())
    assert dataclasses.replace(r, model_id="loso-without-kvasir").digest() == r.digest()
    assert dataclasses.replace(r, seed=1).digest() != r.digest()


def test_train_help_lists_at_most_twenty_options():
    out = subprocess.run([sys.executable, "tools/train", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    options = set(re.findall(r"^\s{2}(--[a-z-]+|-h)", out.stdout, re.M))
    assert "--recipe" in options and "--set" in options and 8 <= len(options) <= 20, sorted(options)


@pytest.mark.parametrize("args, message", [
    (["--set", "data=protocol"], "--data-root: a protocol recipe (data: protocol) needs the folder of its sources"),
    (["--set", "data=protocol", "--data-root", "x", "--dataset", "y"], "--dataset/--negatives: not with a protocol"),
    (["--dataset", "y", "--holdout-source", "kvasir"], "--holdout-source: only with a protocol recipe"),
    (["--set", "epochs=0"], "epochs: expected a value in 1..1000, got 0"),
])
def test_train_refuses_a_recipe_that_does_not_fit_its_data(tmp_path, args, message):
    r = subprocess.run([sys.executable, "tools/train", *args, "--out", str(tmp_path / "o")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr, r.stderr[-1000:]
