"""Level/profile decomposition and masked losses; InfoNCE; label smoothing (issue 5).

Real expression rows (chr8 genes with missing tissues) for the decomposition; synthetic tensors
(named synthetic_*) only for the contrastive and classification losses.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genesplice.training.targets import level_profile
from genesplice.training.losses import (info_nce, level_profile_loss, masked_loss,
                                        masked_mse, observed_gene_weights,
                                        smoothed_bce_with_logits, smoothed_cross_entropy)


@pytest.fixture(scope="module")
def real_y(expression, chr8_split):
    obs = expression.values.loc[list(chr8_split.test)]
    gaps = obs[obs.isna().any(axis=1)]
    full = obs[obs.notna().all(axis=1)].iloc[:20]
    y = torch.tensor(np.concatenate([gaps.to_numpy(), full.to_numpy()]), dtype=torch.float64)
    return y


def test_decomposition_on_real_rows(real_y):
    assert torch.isnan(real_y).any()
    d = level_profile(real_y)
    assert torch.equal(d.mask, ~torch.isnan(real_y))
    ref = torch.tensor(np.nanmean(real_y.numpy(), axis=1))
    torch.testing.assert_close(d.level, ref)
    assert not torch.isnan(d.profile).any()
    torch.testing.assert_close(d.profile.sum(dim=1), torch.zeros(len(real_y), dtype=torch.float64))
    rebuilt = torch.where(d.mask, d.level[:, None] + d.profile, real_y)
    torch.testing.assert_close(rebuilt[d.mask], real_y[d.mask])


def test_level_profile_loss_parts(real_y):
    mask = ~torch.isnan(real_y)
    perfect = level_profile_loss(torch.nan_to_num(real_y, 5.0), real_y)
    assert perfect.total.item() == 0.0
    shifted = level_profile_loss(torch.nan_to_num(real_y) + 0.3, real_y)
    # a constant shift changes only the level, never the profile
    assert shifted.level.item() == pytest.approx(0.09)
    assert shifted.profile.item() == pytest.approx(0.0, abs=1e-20)
    flat = torch.nanmean(real_y, dim=1, keepdim=True).expand_as(real_y)
    flat_loss = level_profile_loss(flat, real_y, mask, level_weight=0.0, profile_weight=2.0)
    d = level_profile(real_y)
    assert flat_loss.level.item() == pytest.approx(0.0, abs=1e-20)
    assert flat_loss.total.item() == pytest.approx(2 * (d.profile[mask] ** 2).mean().item())


def test_masked_mse_ignores_nan_and_has_gradients(real_y):
    pred = torch.zeros_like(real_y, requires_grad=True)
    mask = ~torch.isnan(real_y)
    loss = masked_mse(pred, real_y, mask)
    assert loss.item() == pytest.approx((real_y[mask] ** 2).mean().item())
    loss.backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad[~mask] == 0).all()
    empty = masked_mse(pred, real_y, torch.zeros_like(mask))
    assert empty.item() == 0.0


def test_info_nce_synthetic():
    g = torch.Generator().manual_seed(0)
    synthetic_a = torch.randn(16, 8, generator=g)
    aligned = info_nce(synthetic_a, synthetic_a * 3.0, temperature=0.05)
    shuffled = info_nce(synthetic_a, synthetic_a[torch.randperm(16, generator=g)],
                        temperature=0.05)
    assert aligned.item() < 0.1 < math.log(16) / 2 < shuffled.item()
    same = torch.ones(4, 3)
    assert info_nce(same, same).item() == pytest.approx(math.log(4))
    # symmetric
    b = torch.randn(16, 8, generator=g)
    assert info_nce(synthetic_a, b).item() == pytest.approx(info_nce(b, synthetic_a).item())


def test_label_smoothing_synthetic():
    synthetic_logits = torch.tensor([[4.0, -4.0], [0.0, 2.0]])
    synthetic_targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = 0.2
    soft = synthetic_targets * 0.8 + 0.1
    ref = F.binary_cross_entropy_with_logits(synthetic_logits, soft)
    assert smoothed_bce_with_logits(synthetic_logits, synthetic_targets,
                                    smoothing=s).item() == pytest.approx(ref.item())
    mask = torch.tensor([[True, False], [True, True]])
    part = F.binary_cross_entropy_with_logits(synthetic_logits, soft, reduction="none")[mask]
    assert smoothed_bce_with_logits(synthetic_logits, synthetic_targets, smoothing=s,
                                    mask=mask).item() == pytest.approx(part.mean().item())
    # with smoothing, a huge confident logit is penalised; without, it is not
    big = torch.tensor([[50.0]])
    assert smoothed_bce_with_logits(big, torch.ones(1, 1), smoothing=0.0).item() < 1e-6
    assert smoothed_bce_with_logits(big, torch.ones(1, 1), smoothing=0.1).item() > 1.0
    ce = smoothed_cross_entropy(synthetic_logits, torch.tensor([0, 1]), smoothing=0.1)
    assert ce.item() == pytest.approx(F.cross_entropy(synthetic_logits, torch.tensor([0, 1]),
                                                      label_smoothing=0.1).item())


# --------------------------------------------------------------------- robust to noisy labels

def _fit_linear(x, y, kind, steps=300):
    """A linear map from 25 tissues to 12 others, fitted with ``level_profile_loss``."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], y.shape[1])
    opt = torch.optim.Adam(lin.parameters(), lr=0.05)
    for _ in range(steps):
        loss = level_profile_loss(lin(x), y, kind=kind, huber_delta=0.5).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lin


def test_huber_degrades_gracefully_with_corrupted_labels(expression, chr8_split):
    """Real rows: predict 12 tissues from the other 25 (train: 1,500 training-chromosome
    genes, test: chr8). Corrupting 10% of the training genes' labels with large outliers
    (+5 to +8 log10 units) ruins the MSE fit; the Huber fit barely moves."""
    values = expression.values.dropna()
    train = values.loc[values.index.isin(list(chr8_split.train))].iloc[:1500]
    test = values.loc[values.index.isin(list(chr8_split.test))]
    as_t = lambda df: torch.tensor(df.to_numpy(), dtype=torch.float32)
    x_tr, y_tr = as_t(train.iloc[:, :25]), as_t(train.iloc[:, 25:])
    x_te, y_te = as_t(test.iloc[:, :25]), as_t(test.iloc[:, 25:])
    rng = np.random.default_rng(0)
    bad = rng.choice(len(y_tr), len(y_tr) // 10, replace=False)
    noisy = y_tr.clone()
    noisy[bad] = torch.tensor(rng.uniform(5, 8, (len(bad), y_tr.shape[1])), dtype=torch.float32)

    def test_mse(kind, y):
        lin = _fit_linear(x_tr, y, kind)
        with torch.no_grad():
            return float((lin(x_te) - y_te).pow(2).mean())

    clean = {k: test_mse(k, y_tr) for k in ("mse", "huber")}
    corrupt = {k: test_mse(k, noisy) for k in ("mse", "huber")}
    assert clean["huber"] < 1.1 * clean["mse"]              # no price on clean labels
    assert corrupt["mse"] > 3 * clean["mse"]                 # MSE is pulled by the outliers
    assert corrupt["huber"] < 1.5 * clean["huber"]           # Huber degrades gracefully
    assert corrupt["huber"] < 0.3 * corrupt["mse"], (clean, corrupt)


def test_observed_gene_weights_and_weighted_loss():
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    w = observed_gene_weights(mask)
    assert torch.allclose(w, torch.tensor([1.6, 0.4, 0.0]))
    pred, target = torch.zeros(3, 4), torch.ones(3, 4)
    # equal weights: the weighted loss is the plain masked MSE
    plain = masked_mse(pred, target, mask)
    assert torch.isclose(masked_loss(pred, target, mask, weight=torch.ones(3, 1)), plain)
    # a gene with weight 0 adds nothing; huber is quadratic below delta, linear above
    target2 = torch.tensor([[1.0] * 4, [100.0, 0, 0, 0], [0.0] * 4])
    assert torch.isclose(masked_loss(pred, target2, mask, weight=torch.tensor([[1.0], [0.0],
                                                                              [1.0]])),
                         torch.tensor(1.0))
    assert torch.isclose(masked_loss(torch.zeros(1), torch.tensor([0.5]),
                                     torch.tensor([True]), kind="huber", huber_delta=1.0),
                         torch.tensor(0.125))
    assert torch.isclose(masked_loss(torch.zeros(1), torch.tensor([3.0]),
                                     torch.tensor([True]), kind="huber", huber_delta=1.0),
                         torch.tensor(2.5))
    with pytest.raises(ValueError, match="loss kind"):
        masked_loss(pred, target, mask, kind="l1")
