"""Checkpoints: atomic write, weights_only load, and resume == uninterrupted run (issue 5).

The training here is a synthetic toy (tiny linear model with dropout on synthetic_* tensors):
it exercises the torch, numpy and python RNG streams, AdamW state and a scheduler.
"""
import os
import random

import numpy as np
import pytest
import torch

from genesplice.training.config import RunConfig, config_to_dict
from genesplice.io.errors import GeneSpliceInputError
from genesplice.training import checkpoint as ck
from genesplice.training.schedules import build_scheduler

N_STEPS = 24


def _synthetic_data():
    g = torch.Generator().manual_seed(123)
    synthetic_x = torch.randn(64, 6, generator=g)
    synthetic_y = synthetic_x @ torch.randn(6, 3, generator=g) + 0.1 * torch.randn(64, 3,
                                                                                  generator=g)
    return synthetic_x, synthetic_y


def _setup(kind):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(6, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    sched = build_scheduler(opt, warmup_steps=3, total_steps=N_STEPS, min_lr=1e-3, kind=kind,
                            cycle_steps=8)
    return model, opt, sched


def _train(model, opt, sched, start, stop, data):
    x, y = data
    for _ in range(start, stop):
        idx = np.random.permutation(64)[:16]                 # numpy stream
        noise = random.gauss(0.0, 0.01)                      # python stream
        loss = ((model(x[idx]) + noise - y[idx]) ** 2).mean()  # torch stream (dropout)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()


def _seed_all(s):
    torch.manual_seed(s)
    np.random.seed(s)
    random.seed(s)


@pytest.mark.parametrize("kind", ["cosine", "cyclic"])
def test_resume_is_bit_identical(tmp_path, kind):
    data = _synthetic_data()
    _seed_all(1)
    model, opt, sched = _setup(kind)
    _seed_all(1)
    _train(model, opt, sched, 0, N_STEPS, data)
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    # interrupted run: 10 steps, checkpoint, then everything is thrown away
    _seed_all(1)
    model, opt, sched = _setup(kind)
    _seed_all(1)
    _train(model, opt, sched, 0, 10, data)
    path = ck.save_checkpoint(
        tmp_path / "last.pt", model_state=model.state_dict(),
        optimizer_state=opt.state_dict(), scheduler_state=sched.state_dict(),
        config=config_to_dict(RunConfig()), step=10, epoch=0, best_metric=0.5,
        rng_state=ck.capture_rng_state(), data_checksums={"synthetic": "0" * 64})
    del model, opt, sched
    _seed_all(999)  # a fresh process would have other RNG state
    _ = torch.randn(100), np.random.rand(7), random.random()

    model, opt, sched = _setup(kind)
    c = ck.load_checkpoint(path)
    model.load_state_dict(c.model_state)
    opt.load_state_dict(c.optimizer_state)
    sched.load_state_dict(c.scheduler_state)
    ck.restore_rng_state(c.rng_state)
    _train(model, opt, sched, c.step, N_STEPS, data)
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k
    assert c.step == 10 and c.best_metric == 0.5 and c.config["train"]["test_chromosomes"] == [
        "chr8"]


def test_rng_round_trip_and_weights_only(tmp_path):
    _seed_all(5)
    state = ck.capture_rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    p = ck.save_checkpoint(tmp_path / "r.pt", model_state={}, rng_state=state)
    raw = torch.load(p, weights_only=True)  # plain data only: loads without allowlisting
    assert raw["format"] == "genesplice-checkpoint"
    ck.restore_rng_state(ck.load_checkpoint(p).rng_state)
    b = (torch.rand(3), np.random.rand(3), random.random(), np.random.randn())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    p = ck.save_checkpoint(tmp_path / "best.pt", model_state={"w": torch.ones(2)}, step=1)
    before = p.read_bytes()

    def boom(obj, fh, *a, **k):
        fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(p, model_state={"w": torch.zeros(2)}, step=2)
    monkeypatch.undo()
    assert p.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["best.pt"]
    assert ck.load_checkpoint(p).step == 1


def test_non_plain_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"extra\.arr"):
        ck.save_checkpoint(tmp_path / "x.pt", model_state={}, extra={"arr": np.zeros(2)})
    with pytest.raises(TypeError, match="config.cfg"):
        ck.save_checkpoint(tmp_path / "x.pt", model_state={}, config={"cfg": RunConfig()})
    assert not (tmp_path / "x.pt").exists()


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(GeneSpliceInputError, match="not found"):
        ck.load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(GeneSpliceInputError, match="not a readable checkpoint"):
        ck.load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"model": {}}, other)
    with pytest.raises(GeneSpliceInputError, match="not a genesplice checkpoint"):
        ck.load_checkpoint(other)


def test_compare_checksums():
    ck.compare_checksums({"a": "1" * 64}, {"a": "1" * 64})
    with pytest.raises(GeneSpliceInputError, match="graph: checkpoint absent") as e:
        ck.compare_checksums({"a": "1" * 64}, {"a": "2" * 64, "graph": "3" * 64})
    assert "a: checkpoint 111111111111 vs now 222222222222" in str(e.value)


class _Payload:
    """A pickled object whose unpickling would run code (what weights_only must refuse)."""
    ran = []

    def __reduce__(self):
        return (_Payload.ran.append, ("executed",))


def test_truncated_and_tampered_checkpoints_are_one_line(tmp_path):
    good = ck.save_checkpoint(tmp_path / "good.pt", model_state={"w": torch.zeros(64)})
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(data[:40] + bytes(b ^ 0xFF for b in data[40:80]) + data[80:])
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "x": _Payload()}, evil)
    for path in (cut, flipped, evil):
        with pytest.raises(GeneSpliceInputError) as err:
            ck.load_checkpoint(path)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    assert _Payload.ran == []          # weights_only: the pickled call never ran
