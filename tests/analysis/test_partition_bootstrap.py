"""Bootstrap CIs of the variance partition (per target over blocks, and over subjects) against plain loops."""

import numpy as np
import pytest

from lmbrain.analysis.partition import omega, omega_defined
from lmbrain.analysis.stats import bootstrap_partition, bootstrap_partition_subjects
from lmbrain.encoding import r2_oos


def _bounds(values, nan=False):
    quantile = np.nanquantile if nan else np.quantile
    return quantile(values, 0.025, axis=0), quantile(values, 0.975, axis=0)


def _simulated(seed: int = 0):
    """Responses, three models' predictions, training-fold baselines, blocks and folds (one block untested)."""
    rng = np.random.default_rng(seed)
    n, t = 240, 4
    blocks = np.repeat(np.arange(40), 6)
    folds = blocks % 5
    folds[blocks == 39] = -1
    unique, shared, ctrl = (rng.normal(size=(n, t)) for _ in range(3))
    gain = np.array([1.0, 0.5, 0.0, 0.3])  # target 2: the LLM carries nothing
    Y = gain * unique + shared + ctrl + 2 * rng.normal(size=(n, t))
    pred_llm = 0.8 * (gain * unique + shared) + 0.3 * rng.normal(size=(n, t))
    pred_llm[:, 2] = 0.2 * rng.normal(size=n)
    pred_ctrl = 0.8 * (shared + ctrl) + 0.3 * rng.normal(size=(n, t))
    pred_joint = 0.8 * (gain * unique + shared + ctrl) + 0.3 * rng.normal(size=(n, t))
    base = np.zeros_like(Y)
    for k in range(5):
        base[folds == k] = Y[(folds != k) & (folds >= 0)].mean(0)
    for pred in (pred_llm, pred_ctrl, pred_joint):
        pred[folds < 0] = np.nan
    return Y, pred_llm, pred_ctrl, pred_joint, base, blocks, folds


def test_block_bootstrap_of_the_partition_equals_a_plain_resampling_loop():
    Y, p_llm, p_ctrl, p_joint, base, blocks, folds = _simulated()
    fast = bootstrap_partition(Y, p_llm, p_ctrl, p_joint, base, blocks, folds, n_boot=400, seed=3)
    assert fast.n_units == 39
    keep = folds >= 0
    Y, p_llm, p_ctrl, p_joint, base, blocks = Y[keep], p_llm[keep], p_ctrl[keep], p_joint[keep], base[keep], \
        blocks[keep]
    labels = np.unique(blocks)
    weights = np.random.default_rng(3).multinomial(len(labels), np.full(len(labels), 1 / len(labels)), size=400)
    boot = {"llm": [], "ctrl": [], "joint": []}
    for w in weights:  # the same resampled blocks for the three models
        rows = np.concatenate([np.flatnonzero(blocks == b) for b in np.repeat(labels, w)])
        for key, pred in (("llm", p_llm), ("ctrl", p_ctrl), ("joint", p_joint)):
            boot[key].append(r2_oos(Y[rows], pred[rows], base[rows]))
    llm, ctrl, joint = (np.array(boot[k]) for k in ("llm", "ctrl", "joint"))
    point = [r2_oos(Y, p, base) for p in (p_llm, p_ctrl, p_joint)]
    for name, values, estimate in (("r2_llm", llm, point[0]), ("r2_controls", ctrl, point[1]),
                                   ("r2_joint", joint, point[2]), ("unique", joint - ctrl, point[2] - point[1])):
        np.testing.assert_allclose(getattr(fast, name), estimate, rtol=1e-12)
        low, high = _bounds(values)
        np.testing.assert_allclose(getattr(fast, f"{name}_low"), low, rtol=1e-9)
        np.testing.assert_allclose(getattr(fast, f"{name}_high"), high, rtol=1e-9)
    above = _bounds(llm)[0] > 0
    np.testing.assert_array_equal(fast.llm_above_chance, above)
    assert above[[0, 1, 3]].all() and not above[2], "the LLM is above chance except on target 2"
    low, high = _bounds(omega(llm, ctrl, joint), nan=True)
    np.testing.assert_allclose(fast.omega_low[above], low[above], rtol=1e-9)
    np.testing.assert_allclose(fast.omega_high[above], high[above], rtol=1e-9)
    np.testing.assert_allclose(fast.omega[above], omega(*point)[above], rtol=1e-12)
    assert np.isnan(fast.omega[~above]).all() and np.isnan(fast.omega_low[~above]).all()
    assert (fast.unique_low <= fast.unique).all() and (fast.unique <= fast.unique_high).all()


def test_block_bootstrap_chunks_targets_without_changing_the_result(monkeypatch):
    import lmbrain.analysis.stats as stats

    data = _simulated(1)
    whole = bootstrap_partition(*data, n_boot=50, seed=0)
    monkeypatch.setattr(stats, "_CHUNK", 4 * 50)  # one target per chunk
    chunked = bootstrap_partition(*data, n_boot=50, seed=0)
    for name in ("r2_llm_low", "unique_high", "omega_low"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-12)


def test_subject_bootstrap_of_the_partition_equals_a_plain_loop():
    rng = np.random.default_rng(4)
    n_sub = 9
    r2_llm = 0.05 + 0.02 * rng.normal(size=n_sub)
    r2_ctrl = 0.03 + 0.02 * rng.normal(size=n_sub)
    r2_joint = r2_ctrl + 0.6 * r2_llm + 0.005 * rng.normal(size=n_sub)
    r2_llm[4] = np.nan  # a subject without a score is dropped
    ci = bootstrap_partition_subjects(r2_llm, r2_ctrl, r2_joint, n_boot=500, seed=5)
    keep = np.isfinite(r2_llm)
    a, b, c = r2_llm[keep], r2_ctrl[keep], r2_joint[keep]
    assert ci.n_units == n_sub - 1
    idx = np.random.default_rng(5).integers(0, len(a), size=(500, len(a)))
    means = np.array([[a[i].mean(), b[i].mean(), c[i].mean()] for i in idx])
    unique = means[:, 2] - means[:, 1]
    om = np.array([omega(np.array([m[0]]), np.array([m[1]]), np.array([m[2]]))[0] for m in means])
    assert float(ci.unique) == pytest.approx(c.mean() - b.mean(), rel=1e-12)
    assert float(ci.omega) == pytest.approx(omega(np.array([a.mean()]), np.array([b.mean()]),
                                                  np.array([c.mean()]))[0], rel=1e-12)
    for value, expected in ((ci.unique_low, _bounds(unique)[0]), (ci.unique_high, _bounds(unique)[1]),
                            (ci.r2_llm_low, _bounds(means[:, 0])[0]), (ci.omega_low, _bounds(om, nan=True)[0]),
                            (ci.omega_high, _bounds(om, nan=True)[1])):
        assert float(value) == pytest.approx(float(expected), rel=1e-9)
    assert bool(ci.llm_above_chance)


def test_subject_bootstrap_leaves_omega_undefined_where_the_llm_is_at_chance():
    rng = np.random.default_rng(6)
    r2_llm = 0.00005 + 0.001 * rng.normal(size=(8, 2))  # column 0: an untrained model at chance
    r2_llm[:, 1] += 0.05
    r2_ctrl = 0.02 + 0.001 * rng.normal(size=(8, 2))
    r2_joint = r2_ctrl + 0.5 * np.clip(r2_llm, 0, None)
    ci = bootstrap_partition_subjects(r2_llm, r2_ctrl, r2_joint, n_boot=300, seed=0)
    assert ci.omega.shape == (2,)
    np.testing.assert_array_equal(ci.llm_above_chance, [False, True])
    assert np.isnan([ci.omega[0], ci.omega_low[0], ci.omega_high[0]]).all()
    assert ci.omega_low[1] <= ci.omega[1] <= ci.omega_high[1]
    np.testing.assert_array_equal(ci.llm_above_chance, omega_defined(ci.r2_llm_low))
