"""lmbrain: language-model-to-brain encoding studies with controls built in.

The package reads as the data flow: ``data`` → ``features`` → ``encoding`` → ``analysis`` (controls and
statistics) → ``study`` → ``report``. The entry points below are imported on first use (``import lmbrain as lb``
stays cheap)::

    import lmbrain as lb

    ds = lb.load_dataset("fedorenko2016")                     # a Dataset: stimulus table + responses
    X = lb.get_features("minilm-l6", ds.stimuli.text.tolist(), ds.stimuli.context_id.tolist(),
                        ds.stimuli.position.tolist())[4]      # (layers, words, hidden), cached: layer 4
    Y = ds.subject_responses("1").values
    result = lb.cross_validate(lb.RidgeCV(cv=lb.GroupedKFold(5)), X, Y, ds.groups(), lb.GroupedKFold(5))
    study = lb.load_study("analyses/default.yaml")            # a Study (pydantic; also lb.Study(...))
    out = lb.run_study(study, "reports/default")              # every unit not yet done; resumable
    lb.build_report(out)                                      # tables, figures, index.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmbrain._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from lmbrain.data.registry import list_datasets, load_dataset
    from lmbrain.encoding.estimators import RidgeCV
    from lmbrain.encoding.evaluate import cross_validate
    from lmbrain.encoding.joint import make_joint_estimator
    from lmbrain.encoding.splits import ContiguousBlockSplit, GroupedKFold
    from lmbrain.features.cache import get_features
    from lmbrain.features.controls import control_features, list_controls
    from lmbrain.features.models import list_models, load_model
    from lmbrain.report.build import build_report
    from lmbrain.results import load_results
    from lmbrain.study.runner import run_study
    from lmbrain.study.schema import Study, load_study

_EXPORTS = {
    "load_dataset": "lmbrain.data.registry",
    "list_datasets": "lmbrain.data.registry",
    "get_features": "lmbrain.features.cache",
    "load_model": "lmbrain.features.models",
    "list_models": "lmbrain.features.models",
    "control_features": "lmbrain.features.controls",
    "list_controls": "lmbrain.features.controls",
    "RidgeCV": "lmbrain.encoding.estimators",
    "GroupedKFold": "lmbrain.encoding.splits",
    "ContiguousBlockSplit": "lmbrain.encoding.splits",
    "cross_validate": "lmbrain.encoding.evaluate",
    "make_joint_estimator": "lmbrain.encoding.joint",
    "Study": "lmbrain.study.schema",
    "load_study": "lmbrain.study.schema",
    "run_study": "lmbrain.study.runner",
    "build_report": "lmbrain.report.build",
    "load_results": "lmbrain.results",
}
__all__ = [
    "ContiguousBlockSplit", "GroupedKFold", "RidgeCV", "Study", "__version__", "build_report", "control_features",
    "cross_validate", "get_features", "list_controls", "list_datasets", "list_models", "load_dataset", "load_model",
    "load_results", "load_study", "make_joint_estimator", "run_study",
]
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
