"""The chunked control analysis equals the library's unchunked path (as lmbrain.study.compute composes it)."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.analysis.chunked import (
    ChunkedResult,
    ControlProblem,
    InnerScores,
    NpyTargets,
    block_inner_scores,
    block_results,
    chunked_control_analysis,
    select_layers,
)
from lmbrain.analysis.signflip import paired_sign_flip_test
from lmbrain.data.simulate import mix_features
from lmbrain.encoding import ContiguousBlockSplit, RidgeCV, cross_validate, cross_validate_select
from lmbrain.encoding.joint import make_joint_estimator
from lmbrain.encoding.timeseries import make_delays

ALPHAS = np.logspace(-2, 5, 8)


def small_problem(seed: int = 0, n_per_subject: int = 9, chunk_size: int = 4) -> ControlProblem:
    """3 runs of 60 scans, 3 layers x 6 features x 2 delays, 2 controls x 2 delays, 2 subjects."""
    rng = np.random.default_rng(seed)
    n, runs = 180, np.repeat(np.arange(3), 60)
    latent = rng.normal(size=(n, 6))
    layers = {f"layer={j}": make_delays(latent * (j + 1) / 3 + rng.normal(size=(n, 6)), (1, 2), runs) for j in range(3)}
    controls = make_delays(np.column_stack([rng.poisson(3, n), rng.gamma(2, 1, n)]).astype(float), (1, 2), runs)
    # subject 1 follows layer 1, subject 2 layer 2 (so that the groups choose different layers)
    signal = np.hstack([mix_features({"llm": layers[f"layer={j}"], "ctrl": controls}, None, n_per_subject, rng)[0]
                        for j in (1, 2)])
    Y = signal + rng.normal(size=signal.shape) * 1.5
    Y[:, 3] *= 40.0  # scales differ between targets
    subjects = np.repeat(["s1", "s2"], n_per_subject)
    ridge = RidgeCV(alphas=ALPHAS, cv=ContiguousBlockSplit(3, gap=2), cv_method="refit")
    mask = np.array([True, False, True, False])  # standardise word rate, only centre the other control
    return ControlProblem(candidates=layers, controls=controls, targets=Y, target_groups=subjects, groups=runs,
                          cv=ContiguousBlockSplit(3, gap=2), ridge=ridge, control_standardize=mask,
                          n_permutations=200, seed=3, chunk_size=chunk_size)


def unchunked(problem: ControlProblem) -> dict[str, np.ndarray]:
    """The analysis as compute.py composes it: cross_validate_select, StackedRidgeCV, paired sign flips."""
    Y, groups, cv = problem.targets.Y, problem.groups, problem.cv
    llm = cross_validate_select(problem.candidates, Y, groups, cv, problem.ridge, target_groups=problem.target_groups)
    ctrl_ridge = RidgeCV(alphas=ALPHAS, cv=problem.ridge.cv, standardize=problem.control_standardize,
                         cv_method="refit")
    ctrl = cross_validate_select({"c": problem.controls}, Y, groups, cv, ctrl_ridge)
    dims = (next(iter(problem.candidates.values())).shape[1], problem.controls.shape[1])
    mask = np.concatenate([np.ones(dims[0], dtype=bool), problem.control_standardize])
    joint = make_joint_estimator("stacked_simplex", [slice(0, dims[0]), slice(dims[0], sum(dims))], ALPHAS,
                                 problem.ridge.cv, standardize=mask, cv_method="refit")
    joint_pred = np.full_like(Y, np.nan)
    joint_r, joint_r2 = np.full(Y.shape[1], np.nan), np.full(Y.shape[1], np.nan)
    for subject in np.unique(problem.target_groups):
        cols = problem.target_groups == subject
        per_fold = [np.hstack([problem.candidates[fold[subject]], problem.controls]) for fold in llm.selected]
        res = cross_validate(joint, per_fold, Y[:, cols], groups, cv)
        joint_pred[:, cols], joint_r[cols], joint_r2[cols] = res.predictions, res.r, res.r2
    tested = ctrl.folds >= 0
    test = paired_sign_flip_test(Y, joint_pred, ctrl.predictions, ctrl.baseline, groups, problem.n_permutations,
                                 seed=problem.seed, tested=tested, folds=ctrl.folds)
    return {"llm_r": llm.r, "llm_r2": llm.r2, "controls_r": ctrl.r, "controls_r2": ctrl.r2, "joint_r": joint_r,
            "joint_r2": joint_r2, "unique_r2": test.delta_r2, "p_unique": test.p, "llm": llm.predictions,
            "controls": ctrl.predictions, "joint": joint_pred, "selected": llm.selected}


@pytest.mark.parametrize("chunk_size", [1, 4, 7, 1000])
def test_chunked_equals_unchunked(chunk_size: int) -> None:
    problem = small_problem(chunk_size=chunk_size)
    expected = unchunked(problem)
    got = chunked_control_analysis(problem, keep_predictions=True)
    assert got.selection.selected == expected["selected"]
    assert {fold["s1"] for fold in got.selection.selected} != {fold["s2"] for fold in got.selection.selected}
    for key in ("llm", "controls", "joint"):
        scale = np.abs(expected[key]).max()
        np.testing.assert_allclose(got.predictions[key], expected[key], rtol=0, atol=1e-10 * scale)
    for key in ("llm_r", "llm_r2", "controls_r", "controls_r2", "joint_r", "joint_r2", "unique_r2"):
        np.testing.assert_allclose(getattr(got, key), expected[key], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(got.p_unique, expected["p_unique"])
    np.testing.assert_allclose(got.unique_r2, got.joint_r2 - got.controls_r2, atol=1e-12)
    assert np.all(got.joint_weights >= 0) and np.all(np.abs(got.joint_weights.sum(1) - 1) < 1e-9)


def test_blocks_files_and_spill_give_the_same_results(tmp_path) -> None:
    problem = small_problem(chunk_size=5)
    whole = chunked_control_analysis(problem)
    Y = problem.targets.Y
    files = []
    for j, start in enumerate(range(0, Y.shape[1], 5)):  # one file per 5 targets
        files.append(str(tmp_path / f"Y{j}.npy"))
        np.save(files[-1], Y[:, start : start + 5])
    problem.targets, problem.spill_dir = NpyTargets(files), str(tmp_path)
    # blocks of targets computed separately (as on two workers), the selection from all of them
    parts = [block_inner_scores(problem, 0, 11), block_inner_scores(problem, 11, 18)]
    selection = select_layers(problem, InnerScores.concat(parts))
    blocks = ChunkedResult.concat([block_results(problem, selection, 0, 6), block_results(problem, selection, 6, 18)])
    for key in ChunkedResult._PER_TARGET:
        np.testing.assert_allclose(getattr(blocks, key), getattr(whole, key), rtol=0, atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"Y{j}.npy" for j in range(4))  # spill removed


@pytest.mark.parametrize("executor", ["sequential", "processes", "dask"])
def test_blocks_on_workers_equal_one_process(executor: str, tmp_path) -> None:
    """One unit's targets split into blocks on 2 workers (loky processes, a Dask LocalCluster of 2 worker
    processes): the same results as the single-process analysis."""
    from lmbrain.study.executors import run_chunked, target_blocks

    problem = small_problem(chunk_size=4)
    problem.spill_dir = str(tmp_path)
    single = chunked_control_analysis(problem)
    assert target_blocks(problem.n_targets, 2, 4) == [(0, 8), (8, 18)]
    got = run_chunked(problem, n_blocks=3, executor=executor, n_jobs=2)
    assert got.selection.selected == single.selection.selected
    for key in ChunkedResult._PER_TARGET:
        np.testing.assert_allclose(getattr(got, key), getattr(single, key), rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.joint_weights, single.joint_weights, rtol=0, atol=1e-10)
    assert list(tmp_path.iterdir()) == []


def test_torch_backend_equals_numpy() -> None:
    """The GPU path's code (torch backend, here on the CPU) gives the numpy results."""
    reference = chunked_control_analysis(small_problem())
    problem = small_problem()
    problem.ridge.set_params(backend="torch_cpu")
    got = chunked_control_analysis(problem)
    assert got.selection.selected == reference.selection.selected
    for key in ChunkedResult._PER_TARGET:
        np.testing.assert_allclose(getattr(got, key), getattr(reference, key), rtol=0, atol=1e-10)
