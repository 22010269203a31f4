"""Report figures (matplotlib, PNG + SVG), each derived from the tidy results alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lmbrain.analysis.stats import bootstrap_ci
from lmbrain.report.tables import subject_means
from lmbrain.results import NO_MODEL, layer_index

plt.rcParams.update({"svg.hashsalt": "lmbrain", "figure.dpi": 100, "font.size": 9})


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Save a figure as PNG and SVG (deterministic SVG ids); returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], bbox_inches="tight", dpi=150, metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def _ci_over(values: pd.DataFrame, column: str, unit: str, seed: int, n_boot: int) -> tuple[float, float, float]:
    interval = bootstrap_ci(values[column].to_numpy(), values[unit].to_numpy(), n_boot=n_boot, seed=seed)
    return interval.estimate, interval.low, interval.high


def layer_curves(results: pd.DataFrame, out_dir: Path, n_boot: int = 1000, seed: int = 0) -> list[Path]:
    """Per dataset: outer-CV score per layer (relative depth) and model, with a bootstrap CI across subjects."""
    curves = results[results["per_layer"] & (results["metric"].isin(["r", "r2"]))]
    written: list[Path] = []
    if curves.empty:
        return written
    for dataset, frame in curves.groupby("dataset"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for metric, ax in zip(("r", "r2"), axes, strict=True):
            part = frame[frame["metric"] == metric].copy()
            part["layer_index"] = part["layer"].map(layer_index)
            for model, rows in part.groupby("model"):
                depth_max = rows["layer_index"].max() or 1
                points = []
                for layer, at_layer in rows.groupby("layer_index"):
                    per_subject = at_layer.groupby("subject")["value"].mean().reset_index()
                    unit = "subject" if per_subject["subject"].nunique() > 2 else None
                    source = per_subject if unit else at_layer.assign(subject=at_layer["neuroid_id"])
                    est, low, high = _ci_over(source, "value", "subject", seed, n_boot)
                    points.append((layer / depth_max, est, low, high))
                x, est, low, high = map(np.array, zip(*points, strict=True))
                ax.plot(x, est, marker="o", ms=2.5, label=model)
                ax.fill_between(x, low, high, alpha=0.2)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xlabel("relative layer depth")
            ax.set_ylabel("Pearson r" if metric == "r" else "out-of-sample R²")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{dataset}: per-layer scores (descriptive; layers are chosen inside training folds)")
        written += save(fig, out_dir / f"layers_{dataset}")
    return written


def partition_bars(main: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Stacked bars of shared and unique R² (LLM, controls) per dataset, control set and model (overall rows)."""
    written: list[Path] = []
    for (dataset, controls), frame in main.groupby(["dataset", "controls"]):
        if (frame["subject"] == "all").any():  # the overall row where a dataset has several subjects
            frame = frame[frame["subject"] == "all"]
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(frame), 3.4))
        x = np.arange(len(frame))
        shared = (frame["r2_llm"] + frame["r2_controls"] - frame["r2_joint"]).to_numpy()
        unique_llm = (frame["r2_joint"] - frame["r2_controls"]).to_numpy()
        unique_ctrl = (frame["r2_joint"] - frame["r2_llm"]).to_numpy()
        bottom = np.zeros(len(frame))
        for values, label, color in ((shared, "shared", "#999999"), (unique_ctrl, f"unique {controls}", "#e69f00"),
                                     (unique_llm, "unique LLM", "#0072b2")):
            ax.bar(x, values, bottom=bottom, label=label, color=color)
            bottom = bottom + values
        ax.scatter(x, frame["r2_joint"], color="k", marker="_", s=200, label="R² joint", zorder=3)
        ax.set_xticks(x, frame["model"], rotation=30, ha="right")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel("out-of-sample R²")
        ax.set_title(f"{dataset}: variance partition vs {controls}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a bar
        written += save(fig, out_dir / f"partition_{dataset}_{controls.replace('+', '-')}")
    return written


def split_audit(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Grouped vs shuffled outer CV, per dataset and feature set (mean R² over subjects)."""
    if results["scheme"].nunique() < 2:
        return []
    means = subject_means(results[~results["per_layer"]])
    written: list[Path] = []
    for dataset, frame in means.groupby("dataset"):
        frame = frame.assign(label=np.where(frame["model"] == NO_MODEL, frame["feature_set"],
                                            frame["model"] + " " + frame["feature_set"]))
        table = frame.groupby(["label", "scheme"])["r2"].mean().unstack("scheme")
        fig, ax = plt.subplots(figsize=(1.5 + 0.8 * len(table), 3.4))
        table.plot.bar(ax=ax)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel("out-of-sample R²")
        ax.set_title(f"{dataset}: grouped vs shuffled (leaky) splits")
        ax.tick_params(axis="x", rotation=30)
        written += save(fig, out_dir / f"split_audit_{dataset}")
    return written


def roi_bars(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per-ROI R² of every feature set, for datasets whose targets are ROIs (fMRI)."""
    if "roi" not in results.columns:
        return []
    rows = results[(~results["per_layer"]) & results["roi"].notna() & (results["metric"] == "r2")
                   & (results["scheme"] == "grouped")]
    written: list[Path] = []
    for dataset, frame in rows.groupby("dataset"):
        frame = frame.assign(label=np.where(frame["model"] == NO_MODEL, frame["feature_set"],
                                            frame["model"] + " " + frame["feature_set"]))
        table = frame.groupby(["roi", "label"])["value"].mean().unstack("label")
        fig, ax = plt.subplots(figsize=(2 + 0.9 * len(table), 3.4))
        table.plot.bar(ax=ax)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel("out-of-sample R² (mean over subjects)")
        ax.set_title(f"{dataset}: per ROI")
        ax.legend(fontsize=6)
        written += save(fig, out_dir / f"roi_{dataset}")
    return written
