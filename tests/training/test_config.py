"""Run config: frozen dataclasses, TOML load/save round trip, unknown keys are errors."""
import dataclasses
import tomllib

import pytest

from genesplice.training.config import (RunConfig, TrainConfig, config_from_dict, config_to_dict,
                               load_config, save_config, to_toml, with_overrides)
from genesplice.io.errors import GeneSpliceInputError


def test_defaults_and_frozen():
    cfg = RunConfig()
    assert cfg.train.test_chromosomes == ("chr8",) and cfg.train.val_chromosomes == ("chr9",)
    assert cfg.train.schedule == "cosine"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_round_trip(tmp_path):
    cfg = RunConfig(name='run "x" \\ ü', train=TrainConfig(
        lr=3e-4, min_lr=0.0, seed=7, schedule="cyclic", test_chromosomes=("8", "chrX"),
        val_chromosomes=(), stop_level_and_profile_separately=False, profile_weight=2,
        clip_norm=float("inf")))
    assert cfg.train.test_chromosomes == ("chr8", "chrX")
    assert isinstance(cfg.train.profile_weight, int)  # as given; written/read back as float
    p = save_config(cfg, tmp_path / "sub" / "config.toml")
    back = load_config(p)
    assert back.train.profile_weight == 2.0 and isinstance(back.train.profile_weight, float)
    assert back == dataclasses.replace(cfg, train=dataclasses.replace(cfg.train,
                                                                      profile_weight=2.0))
    assert load_config(save_config(back, tmp_path / "b.toml")) == back
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []
    text = p.read_text()
    assert "[train]" in text and "lr = 0.0003" in text and "clip_norm = inf" in text
    assert tomllib.loads(text)["train"]["test_chromosomes"] == ["chr8", "chrX"]


def test_partial_file_takes_defaults(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "small"\n[train]\nepochs = 3\nlr = 1\n')
    cfg = load_config(p)
    assert cfg.name == "small" and cfg.train.epochs == 3 and cfg.train.lr == 1.0
    assert cfg.ridge == RunConfig().ridge


@pytest.mark.parametrize("text,match", [
    ("[train]\nlearning_rate = 0.1\n", "train.learning_rate"),
    ("[trian]\nlr = 0.1\n", "trian"),
    ("[train]\nepochs = 1.5\n", "train.epochs.*integer"),
    ("[train]\nlr = \"fast\"\n", "train.lr.*number"),
    ("[train]\nstop_level_and_profile_separately = 1\n", "true or false"),
    ("[train]\nschedule = \"linear\"\n", "schedule"),
    ("[train]\ntest_chromosomes = [\"chr8\"]\nval_chromosomes = [\"8\"]\n", "both"),
    ("[ridge]\nalphas = []\n", "alphas"),
    ("[train\n", "invalid TOML"),
])
def test_bad_files_name_key_and_file(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(GeneSpliceInputError, match=match) as e:
        load_config(p)
    assert e.value.path == str(p)


def test_overrides_and_plain_dict():
    cfg = with_overrides(RunConfig(), ["train.lr=0.01", "train.schedule=cyclic",
                                       'train.test_chromosomes=["chr1"]', "name=abc"])
    assert cfg.train.lr == 0.01 and cfg.train.schedule == "cyclic"
    assert cfg.train.test_chromosomes == ("chr1",) and cfg.name == "abc"
    with pytest.raises(GeneSpliceInputError, match="unknown key"):
        with_overrides(cfg, ["train.lrr=1"])
    with pytest.raises(GeneSpliceInputError, match="unknown section"):
        with_overrides(cfg, ["model.x=1"])
    d = config_to_dict(cfg)
    assert d["train"]["test_chromosomes"] == ["chr1"]
    assert config_from_dict(RunConfig, d) == cfg
    assert tomllib.loads(to_toml(d))["train"]["lr"] == 0.01
