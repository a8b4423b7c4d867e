"""Run config: frozen dataclasses, TOML load/save round trip, unknown keys are errors."""
import dataclasses
import tomllib
from pathlib import Path

import pytest

from genesplice.io.errors import GeneSpliceInputError
from genesplice.models.model import FusedModelConfig
from genesplice.models.sequence_encoder import SequenceEncoderConfig
from genesplice.training.config import (
    DEVICES,
    ModelConfig,
    PretrainConfig,
    RunConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
    to_toml,
    with_overrides,
)

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "configs" / "default.toml"


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
        with_overrides(cfg, ["modle.x=1"])
    d = config_to_dict(cfg)
    assert d["train"]["test_chromosomes"] == ["chr1"]
    assert config_from_dict(RunConfig, d) == cfg
    assert tomllib.loads(to_toml(d))["train"]["lr"] == 0.01


# the settings `genesplice demo` passed by hand before the config became the single truth
DEMO_TRAIN = dict(epochs=5, batch_size=1024, warmup_steps=50, lr=1e-3, patience=4,
                  aux_weight=0.1, contrastive_weight=0.05, profile_weight=3.0,
                  linear_lr_scale=0.1)


def test_defaults_are_the_demo_settings():
    cfg = RunConfig()
    for key, value in DEMO_TRAIN.items():
        assert getattr(cfg.train, key) == value, key
    assert cfg.pretrain == PretrainConfig(steps=250, compare=True)
    assert cfg.model == ModelConfig(hidden=32, heads=4, n_layers=2, dropout=0.2,
                                    promoter_encoder="promoter")
    assert cfg.train.device == "auto"     # CPU here; CUDA or MPS where present


def test_model_section_builds_the_demo_architecture():
    model = RunConfig().model
    fused = model.fused("graph_only")
    assert isinstance(fused, FusedModelConfig) and fused.variant == "graph_only"
    assert fused.hidden == 32 and fused.graph.hidden == 32 and fused.graph.heads == 4
    assert fused.graph.n_layers == 2 and fused.graph.dropout == 0.2
    assert model.sequence_encoder() == SequenceEncoderConfig.promoter()
    small = dataclasses.replace(model, promoter_encoder="small").sequence_encoder()
    assert small == SequenceEncoderConfig.small() != SequenceEncoderConfig.promoter()


def test_default_toml_is_the_defaults():
    assert load_config(DEFAULT_TOML) == RunConfig()
    assert tomllib.loads(DEFAULT_TOML.read_text()) == config_to_dict(RunConfig())


def test_model_and_pretrain_sections_round_trip(tmp_path):
    cfg = RunConfig(model=ModelConfig(hidden=48, heads=6, n_layers=3, dropout=0.0,
                                      promoter_encoder="small"),
                    pretrain=PretrainConfig(steps=0, compare=False))
    p = save_config(cfg, tmp_path / "c.toml")
    assert "[model]" in p.read_text() and "[pretrain]" in p.read_text()
    assert load_config(p) == cfg
    assert config_from_dict(RunConfig, config_to_dict(cfg)) == cfg
    over = with_overrides(RunConfig(), ["model.hidden=16", "model.heads=2", "pretrain.steps=0"])
    assert over.model.hidden == 16 and over.model.fused("fused").graph.heads == 2
    assert over.pretrain.steps == 0


def test_a_config_without_the_new_sections_still_loads(tmp_path):
    # config.toml of a run written before [model] / [pretrain] existed
    p = tmp_path / "old.toml"
    p.write_text('name = "old"\n[train]\nepochs = 3\n[ridge]\nmin_genes_per_feature = 5\n')
    cfg = load_config(p)
    assert cfg.model == ModelConfig() and cfg.pretrain == PretrainConfig()


@pytest.mark.parametrize("text,match", [
    ("[model]\nhiden = 16\n", r"unknown key 'model.hiden' \(expected one of .*'model.hidden'"),
    ("[model]\nhidden = 30\n", "not divisible by model.heads"),
    ("[model]\nhidden = 32.0\n", "model.hidden.*integer"),
    ("[model]\ndropout = 1.0\n", "model.dropout"),
    ("[model]\npromoter_encoder = \"huge\"\n", "model.promoter_encoder = 'huge'.*promoter"),
    ("[pretrain]\nsteps = -1\n", "pretrain.steps"),
    ("[pretrain]\nrounds = 1\n", "unknown key 'pretrain.rounds'"),
    ("[train]\ndevice = \"gpu\"\n", r"train.device = 'gpu' \(expected one of \['auto', 'cpu', "
                                    r"'cuda', 'mps'\], or cuda:N\)"),
    ("[train]\ndevice = \"cpu:1\"\n", "train.device = 'cpu:1'"),
])
def test_bad_model_pretrain_device_one_line_naming_key_and_file(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(GeneSpliceInputError, match=match) as e:
        load_config(p)
    assert e.value.path == str(p)
    assert "\n" not in str(e.value) and str(e.value).startswith(f"{p}: ")


@pytest.mark.parametrize("device", [*DEVICES, "cuda:1"])
def test_every_device_value_is_accepted(device):
    assert with_overrides(RunConfig(), [f"train.device={device}"]).train.device == device


def test_device_override_is_validated():
    with pytest.raises(GeneSpliceInputError, match="train.device = 'tpu'"):
        with_overrides(RunConfig(), ["train.device=tpu"])
