"""``import lmbrain as lb``: every public name resolves to the object its module defines, and the README's Python
example runs as written on real data."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np

import lmbrain as lb

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_public_name_is_its_modules_object():
    for name in lb.__all__:
        if name == "__version__":
            continue
        module = importlib.import_module(lb._EXPORTS[name])
        assert getattr(lb, name) is getattr(module, name), name
        assert (getattr(lb, name).__doc__ or "").strip(), f"{name} has no docstring"
    assert set(dir(lb)) >= set(lb.__all__)
    assert set(lb.__all__) == {"__version__", *lb._EXPORTS}  # the literal list and the lazy table agree


def test_the_readme_example_runs(data_dir):
    code = re.search(r"```python\n(import lmbrain as lb\n.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    result, Y = namespace["result"], namespace["Y"]
    assert result.r.shape == (Y.shape[1],) and np.isfinite(result.r2).all()
    # the number, recomputed plainly from the out-of-fold predictions: pooled out-of-sample R² against the training
    # folds' means, and r as the mean over outer folds of each fold's Pearson r
    pred, base, folds = result.predictions.reshape(Y.shape), result.baseline.reshape(Y.shape), result.folds
    tested = folds >= 0
    r2 = 1 - ((Y[tested] - pred[tested]) ** 2).sum(0) / ((Y[tested] - base[tested]) ** 2).sum(0)
    np.testing.assert_allclose(result.r2, r2, rtol=1e-5, atol=1e-6)
    per_fold = [[np.corrcoef(Y[folds == k, t], pred[folds == k, t])[0, 1] for t in range(Y.shape[1])]
                for k in np.unique(folds[tested])]
    np.testing.assert_allclose(result.r, np.mean(per_fold, axis=0), rtol=1e-5, atol=1e-6)
    groups = namespace["ds"].groups()
    for k in np.unique(folds[tested]):  # grouped: no passage on both sides of a fold
        assert not np.intersect1d(groups[folds == k], groups[(folds != k) & tested]).size


def test_every_packages_lazy_names_resolve():
    """Moving a function to another module cannot leave a package's lazy table pointing at the old home."""
    for package in ("lmbrain", "lmbrain.data", "lmbrain.features", "lmbrain.encoding"):
        module = importlib.import_module(package)
        names = [n for n in getattr(module, "__all__", []) if n != "__version__"]
        assert names, package
        for name in names:
            assert getattr(module, name) is not None, f"{package}.{name}"
