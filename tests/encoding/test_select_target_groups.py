"""Per-group candidate selection shares decompositions but equals one selection per group of targets."""

import numpy as np

from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate_select


def test_selection_per_target_group_equals_separate_calls():
    rng = np.random.default_rng(0)
    n = 120
    groups = np.repeat(np.arange(30), 4)
    layers = {f"layer={i}": rng.normal(size=(n, 10)) for i in range(3)}
    # group "a" is driven by layer 0, group "b" by layer 2
    Ya = layers["layer=0"] @ rng.normal(size=(10, 4)) + rng.normal(size=(n, 4))
    Yb = layers["layer=2"] @ rng.normal(size=(10, 3)) + rng.normal(size=(n, 3))
    Y = np.hstack([Ya, Yb])
    labels = np.array(["a"] * 4 + ["b"] * 3)
    est = RidgeCV(alphas=np.logspace(-1, 4, 6), cv=GroupedKFold(4))
    joint = cross_validate_select(layers, Y, groups, GroupedKFold(5), est, target_groups=labels)
    for label, Ysub in (("a", Ya), ("b", Yb)):
        alone = cross_validate_select(layers, Ysub, groups, GroupedKFold(5), est)
        cols = labels == label
        np.testing.assert_allclose(joint.predictions[:, cols], alone.predictions, rtol=1e-10)
        np.testing.assert_allclose(joint.r[cols], alone.r, rtol=1e-10)
        np.testing.assert_allclose(joint.alphas[:, cols], alone.alphas)
        assert [fold[label] for fold in joint.selected] == alone.selected
    assert all(fold["a"] == "layer=0" and fold["b"] == "layer=2" for fold in joint.selected)
