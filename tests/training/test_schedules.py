"""lr_at agrees with the torch schedulers built by build_scheduler (issue 5)."""
import math

import pytest
import torch

from genesplice.io.errors import GeneSpliceInputError
from genesplice.training.schedules import build_scheduler, lr_at


def _torch_lrs(n, base_lr=1e-3, n_groups=1, **kw):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(n_groups)]
    groups = [{"params": [p], "lr": base_lr * (i + 1)} for i, p in enumerate(params)]
    opt = torch.optim.AdamW(groups, lr=base_lr)
    sched = build_scheduler(opt, **kw)
    out = []
    for _ in range(n):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("kind,warmup,total,cycle", [
    ("cosine", 10, 100, None), ("cosine", 0, 40, None), ("cosine", 1, 40, None),
    ("cyclic", 5, 60, 20), ("cyclic", 3, 30, None)])
def test_pure_function_matches_torch_scheduler(kind, warmup, total, cycle):
    kw = dict(warmup_steps=warmup, total_steps=total, min_lr=1e-5, kind=kind, cycle_steps=cycle)
    got = _torch_lrs(total, n_groups=2, **kw)
    for step, lrs in enumerate(got):
        for gi, lr in enumerate(lrs):
            ref = lr_at(step, base_lr=1e-3 * (gi + 1), **kw)
            assert lr == pytest.approx(ref, rel=1e-9, abs=1e-15), (step, gi)


def test_cosine_shape():
    kw = dict(base_lr=1.0, warmup_steps=4, total_steps=14, min_lr=0.1)
    assert [lr_at(s, **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(9, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_at(14, **kw) == pytest.approx(0.1) and lr_at(1000, **kw) == pytest.approx(0.1)
    lrs = [lr_at(s, **kw) for s in range(3, 15)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_cyclic_shape():
    kw = dict(base_lr=1.0, warmup_steps=2, total_steps=100, min_lr=0.0, kind="cyclic",
              cycle_steps=6)
    assert [lr_at(s, **kw) for s in range(13)] == pytest.approx(
        [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0.5, 1, 0.75, 0.5, 0.25, 0])


@pytest.mark.parametrize("kw,match", [
    (dict(kind="linear"), "kind"), (dict(min_lr=1.0), "min_lr"),
    (dict(warmup_steps=100), "warmup"), (dict(kind="cyclic", warmup_steps=0), "cyclic")])
def test_bad_schedules(kw, match):
    args = dict(base_lr=0.1, warmup_steps=5, total_steps=100, min_lr=0.0)
    args.update(kw)
    with pytest.raises(GeneSpliceInputError, match=match):
        lr_at(0, **args)
