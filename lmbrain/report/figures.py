"""Report figures (matplotlib, PNG + SVG), each derived from the tidy results alone."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from lmbrain.io import atomic_write_bytes
from lmbrain.report.seeds import base_model
from lmbrain.report.tables import layer_table, subject_means
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
    NO_MODEL,
    R2,
    R,
    file_label,
    is_untrained,
    join_display,
    label_parts,
    pool_r_metric,
    pool_r_sources,
)

plt.rcParams.update({"svg.hashsalt": "lmbrain", "figure.dpi": 100, "font.size": 9})


#: Okabe–Ito colour-blind-safe palette; a report gives each base model one of them, the same in every figure
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
CONTROLS_COLOR, JOINT_COLOR = "#999999", "#444444"


def model_colors(models: list[str]) -> dict[str, str]:
    """One palette colour per base model (untrained seeds take their model's colour), in sorted order."""
    bases = sorted({base_model(m) for m in models if m != NO_MODEL})
    return {base: PALETTE[i % len(PALETTE)] for i, base in enumerate(bases)}


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Save a figure as PNG and SVG (deterministic SVG ids), each through a temporary name and a rename, readable
    by others (the umask's mode); returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, kwargs in ((".png", {"dpi": 150, "metadata": {"Software": None}}),
                           (".svg", {"metadata": {"Date": None, "Creator": None}})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=suffix[1:], bbox_inches="tight", **kwargs)
        atomic_write_bytes(stem.with_suffix(suffix), buffer.getvalue())
        paths.append(stem.with_suffix(suffix))
    plt.close(fig)
    return paths


def _facets(n: int, max_cols: int = 4, width: float = 3.2, height: float = 2.8,
            sharey: bool = False) -> tuple[plt.Figure, np.ndarray]:
    cols = min(n, max_cols)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, sharey=sharey)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


#: the omega axis shows at least [-5, 108] and at most this range; points beyond it are drawn at its edge with
#: their value written next to them (CIs are cut at the edge)
OMEGA_AXIS_LIMITS = (-100.0, 250.0)


def _omega_limits(frame: pd.DataFrame) -> tuple[float, float]:
    """The y range of an omega panel: [-5, 108] widened to what it draws (every omega, the trained models' CIs),
    within :data:`OMEGA_AXIS_LIMITS`."""
    trained = frame[~frame["untrained"].astype(bool)]
    values = np.concatenate([frame["omega"].to_numpy(float),
                             trained[["omega_low", "omega_high"]].to_numpy(float).ravel()])
    values = values[np.isfinite(values)]
    low = min(-5.0, float(values.min()) - 5) if len(values) else -5.0
    high = max(108.0, float(values.max()) + 8) if len(values) else 108.0
    return max(low, OMEGA_AXIS_LIMITS[0]), min(high, OMEGA_AXIS_LIMITS[1])


def _shown(ax: plt.Axes, value: float, x: float, color: str, bottom: float, top: float) -> float:
    """The y at which an omega is drawn: itself, or the axis edge (with its value written) when it lies beyond."""
    if bottom <= value <= top:
        return value
    edge = top if value > top else bottom
    ax.annotate(f"{value:.0f}", (x, edge), textcoords="offset points", xytext=(7, -8 if value > top else 3),
                color=color, fontsize=6)
    return edge


def omega_overview(rows: pd.DataFrame, out_dir: Path, colors: dict[str, str]) -> list[Path]:
    """Omega (as measured, unclipped) with its 95 % CI per dataset (panels) and model: trained models as filled
    points with error bars, untrained seeds as open points (each seed) around their mean (a bar); 'n.d.' where omega
    is not defined. Above the dotted line at 100 the joint model lost to the controls; below the one at 0 the
    LLM's unique R² exceeds its own; a point beyond the axis range sits at its edge with its value written."""
    if rows.empty:
        return []
    keys = sorted(rows[["dataset", "controls"]].drop_duplicates().itertuples(index=False, name=None))
    fig, axes = _facets(len(keys), width=3.4, height=3.0)
    bases = sorted(rows["base"].unique())
    for ax, (dataset, controls) in zip(axes, keys, strict=False):
        frame = rows[(rows["dataset"] == dataset) & (rows["controls"] == controls)]
        bottom, top = _omega_limits(frame)
        middle = (max(bottom, 0) + min(top, 100)) / 2
        for i, base in enumerate(bases):
            color = colors.get(base, "k")
            trained = frame[(frame["base"] == base) & ~frame["untrained"]]
            seeds = frame[(frame["base"] == base) & frame["untrained"]]
            for r in trained.itertuples():
                if np.isfinite(r.omega):
                    low, high = (r.omega_low, r.omega_high) if np.isfinite(r.omega_low) else (r.omega, r.omega)
                    y = _shown(ax, r.omega, i - 0.15, color, bottom, top)
                    low, high = np.clip([low, high], bottom, top)
                    ax.errorbar(i - 0.15, y, yerr=[[max(y - low, 0)], [max(high - y, 0)]], fmt="o", color=color,
                                ms=6, capsize=3, lw=1.2)
                else:
                    ax.text(i - 0.15, middle, "n.d.", color=color, ha="center", va="center", fontsize=7)
            values = seeds["omega"].to_numpy(float)
            finite = values[np.isfinite(values)]
            if len(seeds):
                jitter = np.linspace(-0.06, 0.06, len(finite)) if len(finite) > 1 else np.zeros(len(finite))
                drawn = [_shown(ax, v, i + 0.2 + j, color, bottom, top) for v, j in zip(finite, jitter, strict=True)]
                ax.scatter(i + 0.2 + jitter, drawn, facecolors="none", edgecolors=color, s=22, lw=1)
                if len(finite):
                    ax.hlines(np.clip(finite.mean(), bottom, top), i + 0.08, i + 0.32, color=color, lw=2)
                if len(finite) < len(values):
                    ax.text(i + 0.2, middle - 8, f"{len(values) - len(finite)}\nn.d.", color=color, ha="center",
                            va="center", fontsize=6)
        ax.set_xticks(range(len(bases)), bases, rotation=15, ha="right")
        ax.set_xlim(-0.5, len(bases) - 0.5)
        ax.set_ylim(bottom, top)
        ax.axhline(100, color="k", lw=0.5, ls=":")
        ax.axhline(0, color="k", lw=0.5, ls=":")
        if top > 100:
            ax.text(0.99, 100, "joint lost to controls ↑", transform=ax.get_yaxis_transform(), ha="right",
                    va="bottom", fontsize=5.5, color="0.35")
        ax.set_title(f"{dataset}\nvs {join_display(label_parts(controls))}", fontsize=8)
        ax.set_ylabel("Ω (% of the LLM R² the controls explain)", fontsize=7)
    handles = [plt.Line2D([], [], marker="o", color="k", ls="", label="trained (95 % CI)")]
    if rows["untrained"].any():  # no legend entry for what the study does not have
        handles.append(plt.Line2D([], [], marker="o", mfc="none", color="k", ls="",
                                  label="untrained seeds (bar: mean)"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.04), frameon=False)
    fig.suptitle("Omega, as measured: how much of each model's brain score the controls explain (n.d.: the LLM's R² "
                 "is not above chance; > 100: the joint model lost to the controls; < 0: unique R² > the LLM's)",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, out_dir / "omega")


def _partition_groups(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(label, base, rows) per bar group: each trained model, then its untrained seeds as one group."""
    groups = []
    for base, part in frame.groupby("base", sort=True):
        trained, seeds = part[~part["untrained"]], part[part["untrained"]]
        if not trained.empty:
            groups.append((base, base, trained))
        if not seeds.empty:
            groups.append((f"{base}\nuntrained ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})", base, seeds))
    return groups


def partition_bars(rows: pd.DataFrame, out_dir: Path, colors: dict[str, str], alpha: float = 0.05) -> list[Path]:
    """Per dataset and control set, the variance partition of each trained model and of its untrained seeds (one
    group, their mean with a min–max bar): R² of the controls alone (grey), of the LLM alone (model colour), of both
    (model colour, black outline) and the LLM's unique R² (hatched), side by side from 0 (a negative value is a bar
    below 0); trained bars carry 95 % CIs, and a star marks a unique R² above 0 after Benjamini–Hochberg (q <=
    ``alpha``)."""
    written: list[Path] = []
    quantities = (("r2_controls", "r2_controls_low", "r2_controls_high"), ("r2_llm", "r2_llm_low", "r2_llm_high"),
                  ("r2_joint", None, None), ("unique_llm", "unique_low", "unique_high"))
    for (dataset, controls), frame in rows.groupby(["dataset", "controls"], sort=True):
        groups = _partition_groups(frame)
        fig, ax = plt.subplots(figsize=(2.2 + 1.25 * len(groups), 3.8))
        width = 0.2
        for g, (_label, base, part) in enumerate(groups):
            color, untrained = colors.get(base, "k"), bool(part["untrained"].iloc[0])
            for k, (column, low, high) in enumerate(quantities):
                xi = g + (k - 1.5) * width
                values = part[column].to_numpy(float)
                value = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
                if not np.isfinite(value):
                    continue
                face = CONTROLS_COLOR if column == "r2_controls" else color
                ax.bar(xi, value, width, color=face, hatch="///" if column == "unique_llm" else None,
                       edgecolor="black" if column == "r2_joint" else "white", lw=1.0 if column == "r2_joint" else 0,
                       alpha=0.55 if untrained else 1.0)
                if untrained and len(values) > 1:
                    ax.vlines(xi, np.nanmin(values), np.nanmax(values), color="black", lw=1.2)
                elif not untrained and low is not None and np.isfinite(part[low].iloc[0]):
                    ax.errorbar(xi, value, yerr=[[max(value - part[low].iloc[0], 0)], [max(part[high].iloc[0] - value,
                                0)]], fmt="none", color="black", lw=0.8, capsize=2)
                if column == "unique_llm" and not untrained and np.isfinite(part["q_unique"].iloc[0]) \
                        and part["q_unique"].iloc[0] <= alpha:
                    top = part[high].iloc[0] if np.isfinite(part[high].iloc[0]) else value
                    ax.text(xi, top, "*", ha="center", va="bottom", fontsize=12, fontweight="bold")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(groups)), [label for label, _, _ in groups], fontsize=7)
        one_target = bool((frame["n_subjects"] < 3).all())
        ax.set_ylabel("out-of-sample R² " + ("(one averaged target)" if one_target else "(mean over subjects)"))
        ax.set_title(f"{dataset}: variance partition vs {join_display(label_parts(controls))}", fontsize=9)
        handles = [plt.Rectangle((0, 0), 1, 1, color=CONTROLS_COLOR, label="controls alone (grey)"),
                   plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="0.4", label="LLM alone (model colour)"),
                   plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", lw=1.5,
                                 label="LLM + controls (black outline)"),
                   plt.Rectangle((0, 0), 1, 1, facecolor="white", hatch="///", edgecolor="0.4",
                                 label="unique LLM R² (hatched; may be < 0)"),
                   plt.Line2D([], [], color="black", marker="_", ls="", ms=8,
                              label="trained: 95 % CI; untrained: min–max over seeds (pale bars)"
                              if frame["untrained"].any() else "95 % CI"),
                   plt.Line2D([], [], color="black", marker="$*$", ls="", ms=8,
                              label=f"unique R² > 0 after BH (q ≤ {alpha:g})")]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        written += save(fig, out_dir / f"partition_{dataset}_{file_label(controls)}")
    return written


def layer_curves(results: pd.DataFrame, out_dir: Path, colors: dict[str, str] | None = None,
                 family_of: dict[str, str] | None = None, n_boot: int = 1000, seed: int = 0) -> list[Path]:
    """Per dataset: R² per relative layer depth, one panel per model family; the trained model a line with its
    95 % CI band (:func:`lmbrain.report.tables.layer_table`), its untrained seeds one band (min–max over seeds)
    around their mean (dashed)."""
    table = layer_table(results, n_boot=n_boot, seed=seed)
    written: list[Path] = []
    if table.empty:
        return written
    colors = colors or model_colors(list(table["model"].unique()))
    family_of = family_of or {}
    table = table.assign(base=table["model"].map(base_model), untrained=table["model"].map(is_untrained))
    table = table.assign(family=table["base"].map(lambda b: family_of.get(b, b)))
    for dataset, frame in table.groupby("dataset"):
        families = sorted(frame["family"].unique())
        fig, axes = _facets(len(families), max_cols=3, width=4.0, height=3.1, sharey=True)
        for ax, family in zip(axes, families, strict=False):
            part = frame[frame["family"] == family]
            for base, rows in part.groupby("base"):
                color = colors.get(base, "k")
                trained = rows[~rows["untrained"]].sort_values("depth")
                if not trained.empty:
                    ax.plot(trained["depth"], trained["r2"], marker="o", ms=3, color=color, label=base)
                    ax.fill_between(trained["depth"].to_numpy(float), trained["r2_ci_low"].to_numpy(float),
                                    trained["r2_ci_high"].to_numpy(float), color=color, alpha=0.18, lw=0)
                seeds = rows[rows["untrained"]]
                if not seeds.empty:
                    spread = seeds.groupby("depth")["r2"].agg(["mean", "min", "max"]).reset_index()
                    n = seeds["model"].nunique()
                    ax.plot(spread["depth"], spread["mean"], ls="--", color=color, lw=1,
                            label=f"{base} untrained ({n} seed{'s' if n > 1 else ''}{', min–max' if n > 1 else ''})")
                    if n > 1:
                        ax.fill_between(spread["depth"], spread["min"], spread["max"], color=color, alpha=0.12,
                                        hatch="..", lw=0)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xlabel("relative layer depth")
            ax.set_title(f"family: {family}", fontsize=8)
            ax.legend(fontsize=6, loc="best", frameon=False)
        axes[0].set_ylabel("out-of-sample R² (band: 95 % CI)")
        over = ", ".join(sorted(set(frame["ci_over"]) - {""}))
        fig.suptitle(f"{dataset}: R² per layer, CI over {over or '-'} (descriptive; layers are chosen inside "
                     "training folds)", fontsize=9)
        fig.tight_layout()
        written += save(fig, out_dir / f"layers_{dataset}")
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
        fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.45 * len(table)))
        y = np.arange(len(table))
        for k, (scheme, color) in enumerate((("grouped", PALETTE[0]), ("shuffled", PALETTE[5]))):
            if scheme in table.columns:
                ax.barh(y + (0.2 if k else -0.2), table[scheme], 0.38, color=color,
                        label=scheme + (" (leaky)" if scheme == "shuffled" else ""))
        ax.set_yticks(y, [join_display(label_parts(label)) for label in table.index], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0, color="k", lw=0.6)
        ax.set_xlabel("out-of-sample R² (mean over subjects)")
        ax.set_title(f"{dataset}: grouped vs shuffled (leaky) outer CV", fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # never over a bar
        written += save(fig, out_dir / f"split_audit_{dataset}")
    return written


def _roi_bars(ax: plt.Axes, here: pd.DataFrame, j: int, slots: list[tuple[str, bool]], width: float,
              colors: dict[str, str], alpha: float) -> None:
    """One ROI's bars around x = j: each trained model's (interval, star) and each model's untrained seeds'."""
    for k, (base, untrained) in enumerate(slots):
        x = j - 0.4 + width * (k + 0.5)
        rows = here[(here["model"].map(base_model) == base) & (here["model"].map(is_untrained) == untrained)]
        if rows.empty:
            continue
        color = colors.get(base, "k")
        if untrained:
            means = rows["mean"].to_numpy(float)
            ax.bar(x, means.mean(), width, color=color, alpha=0.4)
            ax.vlines(x, means.min(), means.max(), color="black", lw=1)
            continue
        r = rows.iloc[0]
        ax.bar(x, r["mean"], width, color=color)
        ax.errorbar(x, r["mean"], yerr=[[max(r["mean"] - r["ci_low"], 0)],
                                        [max(r["ci_high"] - r["mean"], 0)]], color="k", lw=0.8, capsize=2)
        if np.isfinite(r.get("q", np.nan)) and r["q"] <= alpha:
            ax.text(x, max(r["ci_high"], r["mean"]), "*", ha="center", va="bottom", fontsize=11,
                    fontweight="bold")


def _roi_legend(ax: plt.Axes, bases: list[str], colors: dict[str, str], alpha: float) -> None:
    """The ROI panels' legend, right of ``ax``: the models' colours, the untrained seeds, the controls, the star."""
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors.get(b, "k"), label=b) for b in bases]
    handles += [plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.4, label="pale: untrained seeds (mean, range)"),
                plt.Line2D([], [], color=CONTROLS_COLOR, ls="--", label="controls alone"),
                plt.Line2D([], [], color="black", marker="$*$", ls="", ms=8, label=f"q ≤ {alpha:g} (BH over ROIs)")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def roi_panels(across: pd.DataFrame, results: pd.DataFrame, out_dir: Path, colors: dict[str, str],
               alpha: float = 0.05) -> list[Path]:
    """Per dataset with several ROIs: two panels (R² of the LLM alone; unique LLM R²) with the ROIs along x; per ROI
    one bar per trained model (95 % t interval across subjects, a star where its q <= ``alpha``) and one pale bar
    per model's untrained seeds (mean over seeds, a bar over their range); the controls' R² a grey dash per ROI."""
    written: list[Path] = []
    if across.empty:
        return written
    data = results[(~results["per_layer"]) & (results["scheme"] == "grouped") & (results["metric"] == R2)
                   & (results["model"] == NO_MODEL)]
    for dataset, frame in across.groupby("dataset"):
        rois = sorted(frame["roi"].unique())
        if len(rois) < 2:
            continue
        bases = sorted({base_model(m) for m in frame["model"]})
        slots = [(b, False) for b in bases] + [(b, True) for b in bases
                                                if frame["model"].map(is_untrained)[frame["model"].map(base_model)
                                                                                    == b].any()]
        width = 0.8 / len(slots)
        fig, axes = plt.subplots(2, 1, figsize=(max(7.0, 1.2 + 0.22 * len(slots) * len(rois) * 1.6), 6.0),
                                 sharex=True)
        controls = data[data["dataset"] == dataset]
        for ax, quantity, label in zip(axes, ("r2", "unique_llm"), ("R² LLM alone", "unique LLM R²"), strict=True):
            part = frame[frame["quantity"] == quantity]
            for j, roi in enumerate(rois):
                _roi_bars(ax, part[part["roi"] == roi], j, slots, width, colors, alpha)
                if quantity == "r2" and "roi" in controls.columns:
                    at_roi = controls[controls["roi"] == roi]
                    if not at_roi.empty:
                        ax.hlines(at_roi.groupby("subject")["value"].mean().mean(), j - 0.45, j + 0.45,
                                  color=CONTROLS_COLOR, ls="--", lw=1.2)
            ax.axhline(0, color="k", lw=0.6)
            ax.set_ylabel(label)
        axes[1].set_xticks(range(len(rois)), rois)
        _roi_legend(axes[0], bases, colors, alpha)
        fig.suptitle(f"{dataset}: per ROI, mean over subjects with 95 % t interval across subjects", fontsize=9)
        fig.tight_layout()
        written += save(fig, out_dir / f"roi_{dataset}")
    return written


def _pool_curve_panel(ax: plt.Axes, wide: pd.DataFrame, pools: list[int], ceiling: np.ndarray) -> None:
    """Pool curves of three example targets and the median one, with their Spearman-Brown curves and ceilings."""
    from lmbrain.encoding.ceiling import pool_curve

    k = np.asarray(pools, dtype=float)
    grid = np.unique(np.geomspace(1, 100, 60))
    curves = wide[[pool_r_metric(p) for p in pools]].to_numpy(float)
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


def _shrinkage_panel(ax: plt.Axes, wide: pd.DataFrame, ceiling: np.ndarray) -> None:
    """Every target's reported ceiling (with its CI) against its own estimate, those at a bound marked."""
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


def _inter_subject_panel(ax: plt.Axes, wide: pd.DataFrame, ceiling: np.ndarray) -> None:
    """Every target's reported ceiling against its inter-subject ceiling (leave one subject out)."""
    ax.plot(wide[CEILING_INTER_SUBJECT].to_numpy(float), ceiling, "o", ms=2.5, color="#0072b2")
    ax.plot([0, 1], [0, 1], color="k", lw=0.6)
    ax.set_xlabel("inter-subject ceiling (leave one subject out)")
    ax.set_ylabel("reported ceiling")
    ax.set_title("agreement of the two estimates", fontsize=8)


def ceiling_diagnostics(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per dataset with ceilings: the pool curves (mean r from pools of k other subjects; points) of the median and
    of three example targets with the Spearman-Brown curve their two-pool agreement implies (lines) and their
    ceiling (the asymptote, with its CI), next to every target's reported ceiling against its own estimate."""
    written: list[Path] = []
    for dataset, frame in results[results["feature_set"] == CEILING].groupby("dataset", sort=True):
        wide = frame.drop_duplicates(["subject", "neuroid_id", "metric"]).set_index(
            ["subject", "neuroid_id", "metric"])["value"].unstack("metric")
        pools = sorted(k for k in (pool_r_sources(m) for m in wide.columns) if k is not None)
        if not pools or CEILING_OWN not in wide.columns:
            continue
        ceiling = wide[R].to_numpy(float)
        panels = 3 if CEILING_INTER_SUBJECT in wide.columns else 2
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6))
        _pool_curve_panel(axes[0], wide, pools, ceiling)
        _shrinkage_panel(axes[1], wide, ceiling)
        if panels == 3:
            _inter_subject_panel(axes[2], wide, ceiling)
        fig.suptitle(f"{dataset}: noise ceilings ({len(wide)} targets)")
        fig.tight_layout()
        written += save(fig, out_dir / f"ceiling_{dataset}")
    return written
