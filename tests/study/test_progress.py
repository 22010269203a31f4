"""Issue 27: no silent stretches. Feature extraction, surprisal, units and the report log plain progress lines (no
carriage return) at least every LMBRAIN_PROGRESS_SECONDS while they run, with an ETA estimated per unit kind that is
never made up from the fast control units; third-party bars are off, and the report sizes models without loading
them."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

from lmbrain.features import models as feature_models
from lmbrain.features.cache import FeatureCache, get_features
from lmbrain.progress import PROGRESS, KindETA, Progress, quiet_third_party_progress
from lmbrain.study import runner
from lmbrain.study.folder import run_logging
from lmbrain.study.runner import run_study
from lmbrain.study.schema import Study


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages of the progress records captured."""
    return [r.getMessage() for r in caplog.records if getattr(r, PROGRESS, False)]


def test_a_stage_logs_at_start_periodically_and_at_the_end_with_its_pace(caplog) -> None:
    clock = FakeClock()
    with caplog.at_level(logging.INFO, logger="lmbrain"):
        stage = Progress("features of m", 100, "token", logger=logging.getLogger("lmbrain.t"), interval=0.02,
                         clock=clock)
        clock.now += 10
        stage.update(25, note="now: context 3")
        time.sleep(0.2)  # several periodic lines, though nothing else happens
        stage.close()
    lines = progress_lines(caplog)
    assert lines[0] == "features of m: 100 tokens to do"
    assert lines[-1] == "features of m: 25/100 tokens done in 10s"
    periodic = lines[1:-1]
    assert len(periodic) >= 3
    # 25 tokens in 10 s: 75 tokens left take 30 s
    assert set(periodic) == {"features of m: 25/100 tokens; elapsed 10s; ETA 30s; now: context 3"}


def test_the_eta_of_units_is_estimated_per_kind_never_from_the_fast_controls() -> None:
    kinds = {"c1": "controls", "c2": "controls", "j1": "joint", "j2": "joint", "j3": "joint"}
    eta = KindETA(kinds, workers=1)
    eta.finish("c1", 0.5)
    eta.finish("c2", 0.5)
    left, how = eta()
    assert left is None and how == "3 joint not timed yet"  # not 3 x 0.5 s
    eta.finish("j1", 120.0)
    left, how = eta()
    assert left == pytest.approx(240.0) and how == "2 joint x 2m00s"
    two = KindETA(kinds, workers=2, prior={"joint": [60.0, 100.0], "layers": [5.0]})  # from earlier runs
    left, how = two()
    assert "3 joint x 1m20s" in how and "2 controls not timed yet" in how and "over 2 workers" in how
    assert left == pytest.approx(3 * 80.0 / 2)  # a lower bound: the controls are left out, and said so


def slow(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, seconds: float) -> None:
    """Make ``cls.name`` take ``seconds`` longer per call."""
    real = getattr(cls, name)

    def slowed(*args: object, **kwargs: object) -> object:
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(cls, name, slowed)


def test_a_tiny_extraction_writes_periodic_plain_lines_to_run_log(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LMBRAIN_PROGRESS_SECONDS", "0.05")
    slow(monkeypatch, feature_models.LanguageModel, "hidden_states", 0.15)
    texts = [f"word{i}" for i in range(12)]
    with run_logging(tmp_path / "out"):
        found = get_features("gpt2-tiny", texts, [i // 3 for i in range(12)], [i % 3 for i in range(12)],
                             cache=FeatureCache(tmp_path / "cache"), batch_size=1, context="isolated")
    assert found.shape[1] == 12 and np.isfinite(found).all()
    log = (tmp_path / "out" / "run.log").read_text()
    assert "\r" not in log
    lines = [line for line in log.splitlines() if "features of gpt2-tiny" in line]  # config-built: seed 0
    assert re.search(r"features of gpt2-tiny:untrained-0: \d+ tokens to do$", lines[0])
    assert re.search(r"features of gpt2-tiny:untrained-0: (\d+)/\1 tokens done in \d+s$", lines[-1])
    periodic = [line for line in lines[1:-1] if "ETA" in line]
    assert len(periodic) >= 3, log
    assert all(re.search(r"\d+/\d+ tokens; elapsed \d+s; ETA (\d+s|unknown)", line) for line in periodic)


def test_long_units_are_reported_while_they_run(tmp_path: Path, data_dir: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LMBRAIN_PROGRESS_SECONDS", "0.05")
    real = runner.compute_unit

    def slow_unit(study: Study, unit: object) -> object:
        time.sleep(0.4)
        return real(study, unit)

    monkeypatch.setattr(runner, "compute_unit", slow_unit)
    study = Study.model_validate({
        "name": "progress", "datasets": [{"name": "fedorenko2016", "controls": ["word_position", "word_length"]}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        "statistics": {"bootstrap": 20, "permutations": 0, "ceiling": False, "sensitivity": []}})
    out = run_study(study, tmp_path / "out")
    log = (out / "run.log").read_text()
    assert "\r" not in log and "\r" not in capsys.readouterr().err
    heartbeats = [line for line in log.splitlines() if "INFO units: " in line and "; elapsed" in line]
    assert len(heartbeats) >= 4, log
    assert any("ETA unknown (2 controls not timed yet)" in line for line in heartbeats)
    assert any(re.search(r"units: 1/2 units; elapsed \d+s; ETA \d+s \(1 controls x \d+s\)", line)
               for line in heartbeats), heartbeats
    assert "units: 2/2 units done in" in log


def test_third_party_progress_bars_are_off() -> None:
    from transformers import modeling_gguf_pytorch_utils as gguf
    from transformers.utils import logging as hf_logging

    quiet_third_party_progress()
    assert not hf_logging.is_progress_bar_enabled()
    bar = gguf.tqdm(range(3))
    assert bar.disable
    bar.close()


def test_the_report_sizes_models_without_loading_them(monkeypatch) -> None:
    from dataclasses import replace

    from lmbrain.features import registry
    from lmbrain.report.models import model_info

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report loaded a model")

    monkeypatch.setattr(feature_models, "load_model", no_loading)
    from lmbrain.features import checkpoints, sources

    for module in (checkpoints, sources):
        monkeypatch.setattr(module, "load_folder", no_loading)
    for name in ("minilm-l6", "smollm2-135m"):
        entry = registry.registered(name)
        monkeypatch.setitem(registry.MODELS._entries, name, replace(entry, loader=no_loading, skeleton=no_loading))
    assert model_info("minilm-l6")["n_params"] == 22_000_000  # as its registry entry states
    assert model_info("smollm2-135m")["n_params"] == 135_000_000
    assert model_info("gpt2-tiny")["n_params"] > 0  # config-built: counted on the meta device
