"""Each study unit kind (controls, llm, joint, layers) equals an independent scikit-learn computation on real data."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from lmbrain.encoding import ContiguousBlockSplit, RidgeCV, cross_validate
from lmbrain.encoding.joint import DEFAULT_JOINT, DEFAULT_JOINT_TIMESERIES
from lmbrain.study.compute import compute_unit, layer_selection
from lmbrain.study.context import StudyContext
from lmbrain.study.estimators import make_joint
from lmbrain.study.plan import enumerate_units
from lmbrain.study.schema import Study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("unit_reference")]

#: dataset -> (control set, subjects): a single one-hot control (centred only), a two-part set with mixed
#: standardisation flags, and a time series (FIR delays, contiguous blocks with a gap, per-subject control)
CASES = {
    "fedorenko2016": ("word_position", "all"),
    "pereira2018_langnet": ("sentence_length+sentence_position", "all"),
    "brennan2016_alice": ("word_rate+sound_power", ["s18", "s22"]),
}
ALPHAS = np.array([0.1, 10.0, 1000.0, 100000.0])
#: the later (LLM) stage of the hierarchical joint model searches 3 more decades, so that it can vanish
RESIDUAL_ALPHAS = np.concatenate([ALPHAS, ALPHAS[-1] * 10.0 ** np.arange(1, 4)])
N_PERMUTATIONS = 19
TOL = 1e-6


@functools.cache
def make_study(name: str) -> Study:
    control, subjects = CASES[name]
    return Study.model_validate({
        "name": f"reference-{name}",
        "datasets": [{"name": name, "controls": [control], "subjects": subjects}],
        "models": [{"name": "gpt2-tiny"}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        # the reference takes each target's best inner-CV mean (``best_alpha``)
        "estimator": {"layer_curves": True, "alphas": ALPHAS.tolist(), "alpha_choice": "best"},
        "statistics": {"ceiling": False, "bootstrap": 0, "permutations": N_PERMUTATIONS},
    })


@functools.cache
def make_context(name: str) -> StudyContext:
    return StudyContext(make_study(name))


def units_of(name: str, kind: str) -> list:
    return [u for u in enumerate_units(make_context(name)) if u.kind == kind]


def metric(table, name: str, neuroids, layer: str | None = None) -> np.ndarray:
    """A metric's values in the order of the targets' neuroid table."""
    rows = table[table["metric"] == name]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    values = rows.set_index(["subject", "neuroid_id"])["value"]
    keys = list(zip(neuroids["subject"].astype(str), neuroids["neuroid_id"].astype(str), strict=True))
    assert len(values) == len(keys)
    return values.loc[keys].to_numpy()


# -- the independent reference: scikit-learn Ridge, StandardScaler, GroupKFold ---------------------------


def outer_splits(data) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(data.cv.split(np.zeros((len(data.Y), 1)), None, data.groups))


def inner_splits(study: Study, data, train: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The inner folds of a training fold (positions within it): grouped K-fold, or contiguous blocks."""
    if data.dataset.is_timeseries:
        splitter = ContiguousBlockSplit(n_splits=study.cv.inner_splits, gap=study.timeseries.gap)
    else:
        splitter = GroupKFold(n_splits=study.cv.inner_splits)
    return list(splitter.split(np.zeros((len(train), 1)), None, data.groups[train]))


def scaled(Xtr: np.ndarray, Xte: np.ndarray, mask) -> tuple[np.ndarray, np.ndarray]:
    """Centre every column and z-score the flagged ones, with statistics of the training rows only."""
    Xtr, Xte = np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64)
    scaler = StandardScaler().fit(Xtr)
    scale = np.where(np.broadcast_to(mask, Xtr.shape[1]), scaler.scale_, 1.0)
    return (Xtr - scaler.mean_) / scale, (Xte - scaler.mean_) / scale


def inner_r2(X: np.ndarray, Y: np.ndarray, splits, mask, alphas: np.ndarray) -> np.ndarray:
    """Mean over inner folds of each validation fold's R² (against its own mean): (n_alphas, n_targets). ``X``
    holds the outer training rows: scaled once on all of them (RidgeCV's ``cv_method="leave_out"``), then
    Ridge refitted on every inner training fold."""
    scores = np.zeros((len(alphas), Y.shape[1]))
    Xs = scaled(X, X, mask)[0]
    for tr, va in splits:
        Xtr, Xva = Xs[tr], Xs[va]
        for i, alpha in enumerate(alphas):
            pred = Ridge(alpha=alpha).fit(Xtr, Y[tr]).predict(Xva)
            scores[i] += r2_score(Y[va], pred, multioutput="raw_values")
    return scores / len(splits)


def best_alpha(scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Per target the alpha of the best mean inner score; exact ties go to the larger alpha."""
    assert np.all(np.diff(alphas) > 0)
    return alphas[len(alphas) - 1 - np.argmax(scores[::-1], axis=0)]


def worst_alpha(scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """A wrong choice, to show that the comparisons can tell."""
    return alphas[np.argmin(scores, axis=0)]


def refit(Xtr, Ytr, Xte, mask, alpha) -> tuple[np.ndarray, np.ndarray]:
    """Ridge refit on the training rows: (in-sample predictions, test predictions)."""
    Xtr, Xte = scaled(Xtr, Xte, mask)
    model = Ridge(alpha=np.broadcast_to(alpha, Ytr.shape[1]).copy()).fit(Xtr, Ytr)
    return model.predict(Xtr).reshape(len(Xtr), -1), model.predict(Xte).reshape(len(Xte), -1)


def scores(Y: np.ndarray, pred: np.ndarray, baseline: np.ndarray, splits) -> tuple[np.ndarray, np.ndarray]:
    """(mean over outer folds of the per-fold Pearson r, pooled out-of-sample R² against the training means)."""
    r = np.mean([[np.corrcoef(Y[test, t], pred[test, t])[0, 1] for t in range(Y.shape[1])]
                 for _, test in splits], axis=0)
    r2 = 1.0 - ((Y - pred) ** 2).sum(0) / ((Y - baseline) ** 2).sum(0)
    return r, r2


def ridge_reference(study, data, X: np.ndarray, mask, choose=best_alpha):
    """Nested ridge over the unit's outer folds: (predictions, baseline, chosen alphas (n_folds, n_targets))."""
    Y = data.Y
    pred, base, chosen = np.full(Y.shape, np.nan), np.full(Y.shape, np.nan), []
    for train, test in outer_splits(data):
        alpha = choose(inner_r2(X[train], Y[train], inner_splits(study, data, train), mask, ALPHAS), ALPHAS)
        pred[test] = refit(X[train], Y[train], X[test], mask, alpha)[1]
        base[test] = Y[train].mean(0)
        chosen.append(alpha)
    return pred, base, np.array(chosen)


@functools.cache
def selection_reference(name: str):
    """The LLM layer chosen per outer fold and subject (mean over the subject's targets of each layer's
    best-alpha inner R²; ties to the earlier layer), and the LLM's refit predictions and alphas."""
    study = make_study(name)
    context = make_context(name)
    unit = units_of(name, "llm")[0]
    data, candidates, _ = layer_selection(context, unit)
    Y, subjects = data.Y, data.subjects
    names = list(candidates)
    pred, base, choices, alphas = np.full(Y.shape, np.nan), np.full(Y.shape, np.nan), [], []
    for train, test in outer_splits(data):
        inner = inner_splits(study, data, train)
        per_layer = [inner_r2(candidates[n][train], Y[train], inner, True, ALPHAS) for n in names]
        choice, fold_alpha = {}, np.full(Y.shape[1], np.nan)
        for subject in dict.fromkeys(subjects):
            cols = subjects == subject
            means = [s[:, cols].max(0).mean() for s in per_layer]
            best = int(np.argmax(means))
            choice[subject] = names[best]
            fold_alpha[cols] = best_alpha(per_layer[best][:, cols], ALPHAS)
            X = candidates[names[best]]
            pred[np.ix_(test, cols)] = refit(X[train], Y[train][:, cols], X[test], True, fold_alpha[cols])[1]
        base[test] = Y[train].mean(0)
        choices.append(choice)
        alphas.append(fold_alpha)
    return choices, pred, base, np.array(alphas)


def pooled_alpha(scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """The pooled rule by hand: per target the best of 0.25 × its own inner-CV curve + 0.75 × the mean curve of the
    targets whose own best is not the largest alpha, unless its own score at the largest alpha is at least as high."""
    own = best_alpha(scores, alphas)
    wanting = own != alphas[-1]
    pool = scores[:, wanting].mean(1) if wanting.any() else scores.mean(1)
    chosen = best_alpha(0.25 * scores + 0.75 * pool[:, None], alphas)
    at = scores[np.searchsorted(alphas, chosen), np.arange(scores.shape[1])]
    return np.where(at > scores[-1], chosen, alphas[-1])


def hierarchical_reference(study, data, designs, n_llm: int, ctrl_mask, splits, residual_alphas=RESIDUAL_ALPHAS,
                           pooled: bool = False):
    """Controls by nested ridge, then the LLM band by nested ridge on the controls' in-sample residuals (its alpha
    per target, or by the pooled rule); prediction = the sum. ``designs[k]`` is fold k's [LLM layer | controls].
    Returns (pred, alphas (n_folds, 2 bands [LLM, controls], n_targets))."""
    Y = data.Y
    pred, alphas = np.full(Y.shape, np.nan), []
    for (train, test), X in zip(splits, designs, strict=True):
        inner = inner_splits(study, data, train)
        llm, ctrl = X[:, :n_llm], X[:, n_llm:]
        a_ctrl = best_alpha(inner_r2(ctrl[train], Y[train], inner, ctrl_mask, ALPHAS), ALPHAS)
        fitted, p_ctrl = refit(ctrl[train], Y[train], ctrl[test], ctrl_mask, a_ctrl)
        residual = Y[train] - fitted
        curves = inner_r2(llm[train], residual, inner, True, residual_alphas)
        a_llm = (pooled_alpha if pooled else best_alpha)(curves, residual_alphas)
        pred[test] = p_ctrl + refit(llm[train], residual, llm[test], True, a_llm)[1]
        alphas.append(np.stack([a_llm, a_ctrl]))
    return pred, np.array(alphas)


def stacked_reference(study, data, designs, n_llm: int, ctrl_mask, splits) -> tuple[np.ndarray, np.ndarray]:
    """Stacked regressions with simplex weights (Lin et al. 2024), plainly: each band by nested sklearn ridge;
    its inner-CV out-of-fold predictions at the chosen alpha (minus each inner fold's training mean); per target
    the weight w in [0, 1] of the LLM band minimising ||y - w p_llm - (1 - w) p_ctrl||² (closed form for two
    bands); each band refit on the training fold; prediction = mean + Σ weight (band prediction − mean).
    Returns (pred, weights (n_folds, 2 bands [LLM, controls], n_targets))."""
    Y = data.Y
    pred, weights = np.full(Y.shape, np.nan), []
    for (train, test), X in zip(splits, designs, strict=True):
        inner = inner_splits(study, data, train)
        Ytr = Y[train]
        bands = [(X[:, :n_llm], True), (X[:, n_llm:], ctrl_mask)]
        oof = np.full((2, len(train), Y.shape[1]), np.nan)
        target = np.full((len(train), Y.shape[1]), np.nan)
        tests = []
        for b, (Xb, mask) in enumerate(bands):
            alpha = best_alpha(inner_r2(Xb[train], Ytr, inner, mask, ALPHAS), ALPHAS)
            Xs = scaled(Xb[train], Xb[train], mask)[0]  # inner folds: scaled once on the training rows
            for tr, va in inner:
                mean = Ytr[tr].mean(0)
                oof[b, va] = refit(Xs[tr], Ytr[tr], Xs[va], False, alpha)[1] - mean
                target[va] = Ytr[va] - mean
            tests.append(refit(Xb[train], Ytr, Xb[test], mask, alpha)[1])
        seen = np.isfinite(target).all(1)
        d, e = oof[0, seen] - oof[1, seen], target[seen] - oof[1, seen]
        w = np.clip((d * e).sum(0) / (d * d).sum(0), 0.0, 1.0)
        y_mean = Ytr.mean(0)
        pred[test] = y_mean + w * (tests[0] - y_mean) + (1 - w) * (tests[1] - y_mean)
        weights.append(np.stack([w, 1 - w]))
    return pred, np.array(weights)


def banded_reference(data, designs, n_llm: int, mask, splits, penalties: np.ndarray) -> np.ndarray:
    """Banded ridge at given per-band penalties (n_folds, 2, n_targets): plain ridge (alpha 1) with each band's
    standardised columns divided by the square root of its penalty."""
    Y = data.Y
    pred = np.full(Y.shape, np.nan)
    for k, ((train, test), X) in enumerate(zip(splits, designs, strict=True)):
        Xtr, Xte = scaled(X[train], X[test], mask)
        for t in range(Y.shape[1]):
            weight = np.where(np.arange(X.shape[1]) < n_llm, penalties[k, 0, t], penalties[k, 1, t]) ** -0.5
            model = Ridge(alpha=1.0).fit(Xtr * weight, Y[train, t])
            pred[test, t] = model.predict(Xte * weight)
    return pred


# -- the tests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_controls_unit_equals_sklearn_nested_ridge(name, data_dir):
    """Controls alone (one control, or a set side by side): scikit-learn nested ridge, same folds and grid."""
    study = make_study(name)
    context = make_context(name)
    units = units_of(name, "controls")
    assert units and len(units) == (2 if name == "brennan2016_alice" else 1)  # sound power is per subject
    for unit in units:
        table, record = compute_unit(context, unit)
        data = context.targets(unit.dataset, unit.subject, unit.scheme)
        controls = context.controls(unit.dataset, unit.features, unit.subject)
        (X,) = controls.candidates.values()
        X, mask = X[data.rows], controls.standardize
        splits = outer_splits(data)
        pred, base, chosen = ridge_reference(study, data, X, mask)
        r, r2 = scores(data.Y, pred, base, splits)
        np.testing.assert_allclose(metric(table, "r", data.neuroids), r, rtol=0, atol=TOL)
        np.testing.assert_allclose(metric(table, "r2", data.neuroids), r2, rtol=0, atol=TOL)
        # the comparison can fail: another alpha choice or another standardisation moves the scores
        assert chosen.min() < chosen.max() or name == "pereira2018_langnet"
        wrong_alpha = scores(data.Y, *ridge_reference(study, data, X, mask, worst_alpha)[:2], splits)[1]
        assert np.abs(wrong_alpha - r2).max() > 1e-3
        wrong_scaling = scores(data.Y, *ridge_reference(study, data, X, ~mask)[:2], splits)[1]
        assert np.abs(wrong_scaling - r2).max() > 1e-4
        # permutation p-values of the controls alone; the unique-variance test is the joint unit's
        metrics = set(table["metric"])
        assert {"r", "r2", "p_r", "p_r2"} <= metrics and "p_unique" not in metrics
        p = metric(table, "p_r", data.neuroids)
        assert ((p >= 1 / (N_PERMUTATIONS + 1)) & (p <= 1)).all()
        assert record["n_features"] == X.shape[1]


def test_multi_part_control_set_is_one_controls_unit(data_dir):
    """``sentence_length+sentence_position``: one controls unit, the lengths z-scored, the one-hot centred."""
    context = make_context("pereira2018_langnet")
    (unit,) = units_of("pereira2018_langnet", "controls")
    assert unit.feature_set == "sentence_length+sentence_position" and unit.model is None
    controls = context.controls(unit.dataset, unit.features, unit.subject)
    assert list(controls.candidates) == ["sentence_length+sentence_position"]
    assert controls.standardize[:2].all() and not controls.standardize[2:].any()


@pytest.mark.parametrize("name", sorted(CASES))
def test_llm_unit_layer_choice_and_predictions_equal_sklearn(name, data_dir):
    """The layer chosen per fold and subject, the refit alphas, predictions and scores of the LLM unit."""
    context = make_context(name)
    (unit,) = units_of(name, "llm")
    table, record = compute_unit(context, unit)
    data, _, result = layer_selection(context, unit)
    choices, pred, base, alphas = selection_reference(name)
    assert result.selected == choices
    assert {s: [c[s] for c in choices] for s in choices[0]} == record["selected"]
    np.testing.assert_array_equal(result.alphas, alphas)
    # float32 layers: the library fits them (and casts Y) in float32, the reference in float64
    scale = np.abs(data.Y).max(0)
    np.testing.assert_allclose(result.baseline / scale, base / scale, rtol=0, atol=TOL)
    np.testing.assert_allclose(result.predictions / scale, pred / scale, rtol=0, atol=TOL)
    r, r2 = scores(data.Y, pred, base, outer_splits(data))
    np.testing.assert_allclose(metric(table, "r", data.neuroids), r, rtol=0, atol=TOL)
    np.testing.assert_allclose(metric(table, "r2", data.neuroids), r2, rtol=0, atol=TOL)
    if name != "pereira2018_langnet":  # (one target) the choice is not the same layer everywhere
        assert len({c for fold in choices for c in fold.values()}) > 1


@pytest.mark.parametrize("name", sorted(CASES))
def test_joint_unit_equals_sklearn_reimplementation(name, data_dir):
    """The default joint estimator on [the fold's chosen LLM layer | controls], reimplemented with sklearn."""
    from lmbrain.study.estimators import joint_kind

    study = make_study(name)
    context = make_context(name)
    kind = joint_kind(study, context.dataset(name).is_timeseries)
    assert study.estimator.joint == "auto" and kind in (DEFAULT_JOINT, DEFAULT_JOINT_TIMESERIES)
    choices, *_ = selection_reference(name)
    llm_unit = units_of(name, "llm")[0]
    llm_data, candidates, _ = layer_selection(context, llm_unit)
    n_llm = next(iter(candidates.values())).shape[1]
    for unit in units_of(name, "joint"):
        table, _ = compute_unit(context, unit)
        data = context.targets(unit.dataset, unit.subject, unit.scheme)
        assert np.array_equal(data.rows, llm_data.rows)
        controls = context.controls(unit.dataset, unit.features, unit.subject)
        (ctrl,) = controls.rows(data.rows).values()
        splits = outer_splits(data)
        subjects = data.subjects
        r, r2 = np.full(len(subjects), np.nan), np.full(len(subjects), np.nan)
        pred = np.full(data.Y.shape, np.nan)
        mask = np.concatenate([np.ones(n_llm, dtype=bool), controls.standardize])
        together: dict[tuple, list] = {}  # subjects with the same layer in every fold share one fit, as in the unit
        for s in dict.fromkeys(subjects):
            together.setdefault(tuple(fold[s] for fold in choices), []).append(s)
        for members in together.values():
            cols = np.isin(subjects, members)
            sub = type(data)(data.dataset, data.rows, data.Y[:, cols], data.neuroids[cols], data.groups, data.cv)
            designs = [np.hstack([candidates[fold[members[0]]], ctrl]) for fold in choices]
            fitted = cross_validate(make_joint(study, data.dataset.is_timeseries, unit.scheme,
                                               (n_llm, ctrl.shape[1]), mask), designs, sub.Y, data.groups, data.cv)
            if kind in ("hierarchical", "hierarchical_pooled"):
                pooled = kind == "hierarchical_pooled"
                p, alphas = hierarchical_reference(study, sub, designs, n_llm, controls.standardize, splits,
                                                   pooled=pooled)
                np.testing.assert_array_equal(fitted.alphas, alphas)
                vanished = (alphas[:, 0] > ALPHAS[-1]).any()
                p_short = hierarchical_reference(study, sub, designs, n_llm, controls.standardize, splits, ALPHAS,
                                                 pooled=pooled)[0]
                assert not vanished or np.abs(p_short - p).max() > TOL
            elif kind == "stacked_simplex":
                p, weights = stacked_reference(study, sub, designs, n_llm, controls.standardize, splits)
                est = make_joint(study, data.dataset.is_timeseries, unit.scheme, (n_llm, ctrl.shape[1]), mask)
                for k, (train, _) in enumerate(splits):  # the estimator's own weights, fold by fold
                    fit = est.fit(designs[k][train], sub.Y[train], data.groups[train])
                    np.testing.assert_allclose(fit.weights_.reshape(weights[k].shape), weights[k], atol=1e-6)
                assert ((weights[:, 0] > 1e-6) & (weights[:, 0] < 1 - 1e-6)).any()  # not a corner solution only
            elif kind.startswith("banded"):
                p = banded_reference(sub, designs, n_llm, mask, splits, fitted.alphas)
            else:
                pytest.fail(f"no reference for joint estimator {kind!r}")
            pred[:, cols] = p
            base = np.full(sub.Y.shape, np.nan)
            for train, test in splits:
                base[test] = sub.Y[train].mean(0)
            r[cols], r2[cols] = scores(sub.Y, p, base, splits)
            np.testing.assert_allclose(fitted.predictions.reshape(p.shape), p, rtol=0, atol=TOL * np.abs(sub.Y).max())
        np.testing.assert_allclose(metric(table, "r", data.neuroids), r, rtol=0, atol=TOL)
        np.testing.assert_allclose(metric(table, "r2", data.neuroids), r2, rtol=0, atol=TOL)
        # the comparison can fail: a plain ridge on the same design (one alpha for both bands) scores otherwise
        plain = np.full(data.Y.shape, np.nan)
        for s in dict.fromkeys(subjects):
            cols = subjects == s
            for (train, test), fold in zip(splits, choices, strict=True):
                X = np.hstack([candidates[fold[s]], ctrl])
                plain[np.ix_(test, cols)] = refit(X[train], data.Y[train][:, cols], X[test], mask, 1.0)[1]
        assert np.abs(plain - pred).max() > 1e-3 * np.abs(data.Y).max()


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_curve_rows_equal_plain_cross_validate(name, data_dir):
    """Each layer's rows of the per-layer unit equal cross_validate(RidgeCV) on that layer alone."""
    study = make_study(name)
    context = make_context(name)
    (unit,) = units_of(name, "layers")
    table, record = compute_unit(context, unit)
    data, candidates, _ = layer_selection(context, unit)
    assert record["candidates"] == list(candidates) and len(candidates) > 1
    assert set(table["layer"]) == set(candidates)
    timeseries = data.dataset.is_timeseries
    n_inner = study.cv.inner_splits
    inner = ContiguousBlockSplit(n_splits=n_inner, gap=study.timeseries.gap) if timeseries else GroupKFold(n_inner)
    plain = {layer: cross_validate(RidgeCV(alphas=ALPHAS, cv=inner), X, data.Y, data.groups, data.cv)
             for layer, X in candidates.items()}
    for layer in candidates:
        np.testing.assert_allclose(metric(table, "r", data.neuroids, layer), plain[layer].r, rtol=0, atol=1e-10)
        np.testing.assert_allclose(metric(table, "r2", data.neuroids, layer), plain[layer].r2, rtol=0, atol=1e-10)
    # the comparison can fail: the layers' curves differ
    first, *_, last = candidates
    assert np.abs(metric(table, "r2", data.neuroids, first) - plain[last].r2).max() > 1e-4


def test_nested_control_set_increment_equals_sklearn_fits_and_the_paired_sign_flip(data_dir):
    """The larger set's controls unit tests it against the smaller set it contains: the increment is R²(larger) −
    R²(smaller) of two scikit-learn nested ridges on the same folds, and its p the paired block sign-flip test of
    those predictions; a set with no smaller set inside gets no such rows."""
    from lmbrain.analysis.signflip import paired_sign_flip_test
    from lmbrain.results import INCREMENT, P_INCREMENT, increment_metric
    from lmbrain.study.rows import resampling_blocks

    study = Study.model_validate({
        "name": "reference-nested",
        "datasets": [{"name": "pereira2018_langnet",
                      "controls": ["sentence_length", "sentence_length+sentence_position"]}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        "estimator": {"alphas": ALPHAS.tolist(), "alpha_choice": "best"},
        "statistics": {"ceiling": False, "bootstrap": 0, "permutations": 199},
    })
    context = StudyContext(study)
    units = {u.feature_set: u for u in enumerate_units(context) if u.kind == "controls"}
    small_table, _ = compute_unit(context, units["sentence_length"])
    assert not small_table["metric"].str.startswith(P_INCREMENT).any()
    unit = units["sentence_length+sentence_position"]
    table, _ = compute_unit(context, unit)
    data = context.targets(unit.dataset, unit.subject, unit.scheme)
    splits = outer_splits(data)
    fits = {}
    for label, unit_of in units.items():
        controls = context.controls(unit_of.dataset, unit_of.features, unit_of.subject)
        (X,) = controls.candidates.values()
        pred, base, _ = ridge_reference(study, data, X[data.rows], controls.standardize)
        fits[label] = (pred, base, scores(data.Y, pred, base, splits)[1])
    (big, base, r2_big), (small, _, r2_small) = fits["sentence_length+sentence_position"], fits["sentence_length"]
    increment = metric(table, increment_metric(INCREMENT, "sentence_length"), data.neuroids)
    np.testing.assert_allclose(increment, r2_big - r2_small, rtol=0, atol=TOL)
    folds = np.full(len(data.Y), -1)
    for k, (_, test) in enumerate(splits):
        folds[test] = k
    expected = paired_sign_flip_test(data.Y, big, small, base, resampling_blocks(study, data), 199,
                                     seed=study.statistics.seed, tested=folds >= 0, folds=folds).p
    p = metric(table, increment_metric(P_INCREMENT, "sentence_length"), data.neuroids)
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-12)
    assert 1 / 200 <= p.min() and p.max() <= 1
