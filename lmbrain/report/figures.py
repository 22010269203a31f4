"""Report figures (matplotlib, PNG + SVG), each derived from the tidy results alone."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lmbrain.report.tables import layer_table, subject_means
from lmbrain.results import NO_MODEL

plt.rcParams.update({"svg.hashsalt": "lmbrain", "figure.dpi": 100, "font.size": 9})


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Save a figure as PNG and SVG (deterministic SVG ids); returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], bbox_inches="tight", dpi=150, metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def layer_curves(results: pd.DataFrame, out_dir: Path, n_boot: int = 1000, seed: int = 0) -> list[Path]:
    """Per dataset: outer-CV score per layer (relative depth) and model, with the 95 % CI band of
    :func:`lmbrain.report.tables.layer_table` (over subjects; over the split unit's groups for one target)."""
    table = layer_table(results, n_boot=n_boot, seed=seed)
    written: list[Path] = []
    for dataset, frame in table.groupby("dataset"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for metric, ax in zip(("r", "r2"), axes, strict=True):
            for model, rows in frame.groupby("model"):
                rows = rows.sort_values("depth")
                (line,) = ax.plot(rows["depth"], rows[metric], marker="o", ms=2.5, label=model)
                ax.fill_between(rows["depth"].to_numpy(float), rows[f"{metric}_ci_low"].to_numpy(float),
                                rows[f"{metric}_ci_high"].to_numpy(float), color=line.get_color(), alpha=0.2, lw=0)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xlabel("relative layer depth")
            ax.set_ylabel("Pearson r" if metric == "r" else "out-of-sample R²")
        axes[0].legend(fontsize=7)
        over = ", ".join(sorted(set(frame["ci_over"]) - {""}))
        fig.suptitle(f"{dataset}: per-layer scores, 95 % CI over {over or '-'} (descriptive; layers are chosen "
                     "inside training folds)")
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


def ceiling_diagnostics(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per dataset with ceilings: the pool curves (mean r from pools of k other subjects; points) of the median and
    of three example targets with the Spearman-Brown curve their two-pool agreement implies (lines) and their
    ceiling (the asymptote, with its CI), next to every target's reported ceiling against its own estimate."""
    from lmbrain.encoding.ceiling import pool_curve
    from lmbrain.results import (
        CEILING,
        CEILING_AT_BOUND,
        CEILING_CI_HIGH,
        CEILING_CI_LOW,
        CEILING_COMMON_RHO,
        CEILING_EXTRAPOLATED,
        CEILING_INTER_SUBJECT,
        CEILING_OWN,
        CEILING_RHO,
        R,
        pool_r_metric,
        pool_r_sources,
    )

    written: list[Path] = []
    for dataset, frame in results[results["feature_set"] == CEILING].groupby("dataset", sort=True):
        wide = frame.drop_duplicates(["subject", "neuroid_id", "metric"]).set_index(
            ["subject", "neuroid_id", "metric"])["value"].unstack("metric")
        pools = sorted(k for k in (pool_r_sources(m) for m in wide.columns) if k is not None)
        if not pools or CEILING_OWN not in wide.columns:
            continue
        k = np.asarray(pools, dtype=float)
        grid = np.unique(np.geomspace(1, 100, 60))
        curves = wide[[pool_r_metric(p) for p in pools]].to_numpy(float)
        ceiling = wide[R].to_numpy(float)
        panels = 3 if CEILING_INTER_SUBJECT in wide.columns else 2
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
        ax = axes[0]
        order = np.argsort(ceiling)
        examples = [order[int(q * (len(order) - 1))] for q in (0.1, 0.5, 0.9)]
        for i, color in zip(examples, ("#d55e00", "#009e73", "#0072b2"), strict=True):
            target = wide.iloc[i]
            subject, neuroid = (str(v) for v in target.name)
            label = neuroid if neuroid.startswith(subject) else f"subject {subject}, {neuroid}"
            ax.plot(k, curves[i], "o", color=color, ms=3.5, label=label)
            if np.isfinite(target[CEILING_RHO]):
                ax.plot(grid, target[CEILING_OWN] * pool_curve(grid, target[CEILING_RHO])[0], color=color, lw=1)
            ax.axhline(target[R], color=color, ls=":", lw=0.8)
            ax.axhspan(target[CEILING_CI_LOW], target[CEILING_CI_HIGH], color=color, alpha=0.08, lw=0)
        median_curve = np.nanmedian(curves, axis=0)
        ax.plot(k, median_curve, "s", color="k", ms=3.5, label="median target")
        rho = float(np.nanmedian(wide[CEILING_COMMON_RHO])) if CEILING_COMMON_RHO in wide.columns else np.nan
        if np.isfinite(rho):
            scale = float(np.nanmedian(wide[CEILING_EXTRAPOLATED]))
            ax.plot(grid, scale * pool_curve(grid, rho)[0], color="k", ls="--", lw=1,
                    label=f"common shape (rho={rho:.2f})")
        ax.axhline(float(np.nanmedian(ceiling)), color="k", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("source subjects in the pool (k)")
        ax.set_ylabel("Pearson r (dotted: ceiling, band: 95 % CI)")
        ax.set_title("pool curves and Spearman-Brown extrapolation", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[1]
        own = np.clip(wide[CEILING_OWN].to_numpy(float), -0.3, 1.3)
        bound = wide[CEILING_AT_BOUND].to_numpy(float) > 0 if CEILING_AT_BOUND in wide.columns else own != own
        own = np.where(np.isfinite(own), own, -0.3)  # no own estimate: drawn at the left edge
        errors = np.vstack([ceiling - wide[CEILING_CI_LOW].to_numpy(float), wide[CEILING_CI_HIGH].to_numpy(float)
                            - ceiling])
        ax.errorbar(own[~bound], ceiling[~bound], yerr=errors[:, ~bound], fmt="o", ms=2.5, lw=0.5, color="#0072b2",
                    label="own estimate in (0, 1)")
        ax.errorbar(own[bound], ceiling[bound], yerr=errors[:, bound], fmt="x", ms=4, lw=0.5, color="#d55e00",
                    label="own estimate missing (left edge) or outside (0, 1)")
        ax.plot([0, 1], [0, 1], color="k", lw=0.6)
        ax.set_xlabel("target's own estimate (clipped to [-0.3, 1.3])")
        ax.set_ylabel("reported ceiling (95 % CI)")
        ax.set_ylim(0, 1)
        ax.set_title("shrinkage toward the subject mean", fontsize=8)
        ax.legend(fontsize=6)
        if panels == 3:
            ax = axes[2]
            ax.plot(wide[CEILING_INTER_SUBJECT].to_numpy(float), ceiling, "o", ms=2.5, color="#0072b2")
            ax.plot([0, 1], [0, 1], color="k", lw=0.6)
            ax.set_xlabel("inter-subject ceiling (leave one subject out)")
            ax.set_ylabel("reported ceiling")
            ax.set_title("agreement of the two estimates", fontsize=8)
        fig.suptitle(f"{dataset}: noise ceilings ({len(wide)} targets)")
        fig.tight_layout()
        written += save(fig, out_dir / f"ceiling_{dataset}")
    return written
