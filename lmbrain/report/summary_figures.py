"""The summary figures: the first screen's answer (unique R² and omega per dataset × model, with corrected
significance marks) and the model families side by side (trained vs untrained seeds)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lmbrain.report.figures import save
from lmbrain.results import join_display, label_parts


def answer_figure(rows: pd.DataFrame, out_dir: Path, colors: dict[str, str], alpha: float = 0.05) -> list[Path]:
    """The first screen's figure: unique LLM R² and omega per dataset × control set (rows) and model (colours):
    trained models filled with 95 % CIs and a star where the unique R² survives BH correction (q <= ``alpha``);
    untrained seeds an open square at their mean with a bar over their range."""
    if rows.empty:
        return []
    keys = sorted(rows[["dataset", "controls"]].drop_duplicates().itertuples(index=False, name=None), reverse=True)
    bases = sorted(rows["base"].unique())
    step = 0.8 / max(len(bases), 1)
    fig, axes = plt.subplots(1, 2, figsize=(8.2, 0.9 + 0.62 * len(keys) * max(1, len(bases) / 2.5)), sharey=True)
    for ax, (value, low, high, label) in zip(axes, (("unique_llm", "unique_low", "unique_high", "unique LLM R²"),
                                                    ("omega", "omega_low", "omega_high", "Ω: % of the LLM's R² "
                                                     "the controls explain")), strict=True):
        for y, (dataset, controls) in enumerate(keys):
            frame = rows[(rows["dataset"] == dataset) & (rows["controls"] == controls)]
            for i, base in enumerate(bases):
                yy = y + 0.4 - step * (i + 0.5)
                color = colors.get(base, "k")
                part = frame[frame["base"] == base]
                for r in part[~part["untrained"]].itertuples(index=False):
                    v, lo, hi = getattr(r, value), getattr(r, low), getattr(r, high)
                    if not np.isfinite(v):
                        ax.text(0.02, yy, f"{base}: n.d.", transform=ax.get_yaxis_transform(), fontsize=6,
                                color=color, va="center")
                        continue
                    xerr = [[max(v - lo, 0) if np.isfinite(lo) else 0], [max(hi - v, 0) if np.isfinite(hi) else 0]]
                    ax.errorbar([v], [yy], xerr=xerr, fmt="o", color=color, ms=5, capsize=2, lw=1.2)
                    if value == "unique_llm" and np.isfinite(r.q_unique) and r.q_unique <= alpha:
                        ax.text(hi if np.isfinite(hi) else v, yy, " *", color=color, fontsize=11, va="center",
                                fontweight="bold")
                seeds = part[part["untrained"]][value].to_numpy(float)
                seeds = seeds[np.isfinite(seeds)]
                if len(seeds):
                    ax.hlines(yy - step * 0.3, seeds.min(), seeds.max(), color=color, lw=2.5, alpha=0.45)
                    ax.plot([seeds.mean()], [yy - step * 0.3], marker="s", mfc="white", color=color, ms=4, ls="")
            if y:
                ax.axhline(y - 0.5, color="0.85", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
        if value == "omega":
            ax.axvline(100, color="k", lw=0.6, ls=":")
        ax.set_xlabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    from lmbrain.report.verdicts import short_controls

    axes[0].set_yticks(range(len(keys)), [f"{d}\nvs {short_controls(c)}" for d, c in keys], fontsize=7)
    axes[0].set_ylim(-0.55, len(keys) - 0.45)
    handles = [plt.Line2D([], [], marker="o", color=colors.get(b, "k"), ls="", label=b) for b in bases]
    handles += [plt.Line2D([], [], marker="o", color="0.3", ls="-", label="trained, 95 % CI")]
    if rows["untrained"].any():  # no legend entry for what the study does not have
        handles.append(plt.Line2D([], [], marker="s", mfc="white", color="0.3", ls="-",
                                  label="untrained seeds: mean, range"))
    handles.append(plt.Line2D([], [], marker="$*$", color="0.3", ls="", ms=8,
                              label=f"unique R² > 0 after BH (q ≤ {alpha:g})"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(handles) > 4), 1, 1))
    return save(fig, out_dir / "answer")


def _size_text(n_params: float) -> str:
    if not np.isfinite(n_params):
        return ""
    return f"{n_params / 1e6:.0f}M" if n_params >= 1e6 else f"{n_params / 1e3:.0f}k"


def families(rows: pd.DataFrame, out_dir: Path, colors: dict[str, str], info: dict[str, dict]) -> list[Path]:
    """LLM R², unique LLM R² and omega per model family side by side, one panel row per dataset × control set:
    each trained model a filled circle with its 95 % CI, its untrained seeds an open square at their mean with a
    bar over their range (min–max over seeds) just right of it."""
    if rows.empty:
        return []
    bases = sorted(rows["base"].unique(), key=lambda b: (info.get(b, {}).get("n_params", np.nan), b))
    position = {b: i for i, b in enumerate(bases)}
    keys = sorted(rows[["dataset", "controls"]].drop_duplicates().itertuples(index=False, name=None))
    quantities = (("r2_llm", "r2_llm_low", "r2_llm_high", "R² LLM alone"),
                  ("unique_llm", "unique_low", "unique_high", "unique LLM R²"),
                  ("omega", "omega_low", "omega_high", "Ω (%)"))
    fig, axes = plt.subplots(len(keys), 3, figsize=(11, 2.9 * len(keys)), squeeze=False)
    for row_axes, (dataset, controls) in zip(axes, keys, strict=True):
        frame = rows[(rows["dataset"] == dataset) & (rows["controls"] == controls)]
        for ax, (value, low, high, label) in zip(row_axes, quantities, strict=True):
            for base, part in frame.groupby("base"):
                x, color = position[base], colors.get(base, "k")
                trained = part[~part["untrained"]]
                for r in trained.itertuples(index=False):
                    v, lo, hi = getattr(r, value), getattr(r, low), getattr(r, high)
                    if not np.isfinite(v):  # an omega of a model not above chance: said, not left blank
                        ax.text(x, 0.5, "n.d.", transform=ax.get_xaxis_transform(), ha="center", va="center",
                                fontsize=7, color=color)
                        continue
                    err = [[max(v - lo, 0) if np.isfinite(lo) else 0], [max(hi - v, 0) if np.isfinite(hi) else 0]]
                    ax.errorbar([x], [v], yerr=err, color=color, marker="o", ms=5, capsize=3)
                seeds = part[part["untrained"]][value].to_numpy(float)
                seeds = seeds[np.isfinite(seeds)]
                if len(seeds):
                    ax.vlines(x + 0.22, seeds.min(), seeds.max(), color=color, lw=3, alpha=0.45)
                    ax.plot([x + 0.22], [seeds.mean()], marker="s", mfc="white", color=color, ms=5)
            # name and size, slanted: four long model names side by side would run into each other
            ax.set_xticks(range(len(bases)), [f"{b}\n{_size_text(info.get(b, {}).get('n_params', np.nan))}"
                                              for b in bases], fontsize=7, rotation=25, ha="right",
                          rotation_mode="anchor")
            ax.set_xlim(-0.5, len(bases) - 0.3)
            ax.axhline(0, color="k", lw=0.5)
            if value == "omega":
                ax.axhline(100, color="k", lw=0.5, ls=":")
            ax.set_ylabel(label)
            ax.set_title(f"{dataset}\nvs {join_display(label_parts(controls))}", fontsize=8)
    handles = [matplotlib.lines.Line2D([], [], color="0.2", marker="o", ls="", label="trained (95 % CI)"),
               matplotlib.lines.Line2D([], [], color="0.2", marker="s", mfc="white", ls="",
                                       label="untrained seeds: mean, bar = min–max")]
    axes[0][0].legend(handles=handles, fontsize=6, frameon=False)
    fig.suptitle("Score, unique variance and omega per model family (trained vs untrained seeds)", fontsize=9)
    fig.tight_layout()
    return save(fig, out_dir / "families")


def literature_figure(rows: pd.DataFrame, values: list, out_dir: Path, colors: dict[str, str]) -> list[Path]:
    """Each published omega (Feghhi et al.; black diamond, ± its SE) beside this study's comparable value for every
    model of the same training state on the same dataset and controls: the mean of per-subject omegas, each clipped
    to 0–100 as published (coloured; open for the mean over untrained seeds). One row per published value."""
    from lmbrain.report.names import readable_dataset
    from lmbrain.report.verdicts import short_controls

    omegas = [v for v in values if v.quantity == "omega" and (rows["dataset"] == v.dataset).any()]
    if rows.empty or not omegas or "omega_subject_mean_clipped" not in rows.columns:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.55 * len(omegas)))
    labels = []
    for y, value in enumerate(omegas):
        untrained = "untrained" in value.model
        ax.errorbar([value.value], [y], xerr=[[value.spread or 0], [value.spread or 0]], fmt="D", color="black",
                    ms=6, capsize=3)
        frame = rows[(rows["dataset"] == value.dataset) & (rows["controls"] == (value.controls or ""))
                     & (rows["untrained"] == untrained)]
        for base, group in frame.groupby("base", sort=True):
            numbers = group["omega_subject_mean_clipped"].to_numpy(float)
            numbers = numbers[np.isfinite(numbers)]
            if len(numbers):
                ax.plot([numbers.mean()], [y - 0.18], marker="o", ls="", ms=6, color=colors.get(base, "k"),
                        mfc="white" if untrained else colors.get(base, "k"), label=base)
        labels.append(f"{readable_dataset(value.dataset).split(' (')[0]}, {short_controls(value.controls or '')}\n"
                      f"vs {value.model.replace('gpt2-xl', 'GPT2-XL')}")
    ax.set_yticks(range(len(omegas)), labels, fontsize=7)
    ax.set_xlabel("Ω (%): mean of per-subject omegas, each clipped to 0–100 (as published)")
    ax.set_xlim(-5, 105)
    ax.invert_yaxis()
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    unique = {"published (± SE)": plt.Line2D([], [], marker="D", color="black", ls=""), **unique}
    ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("This study beside published omegas (different models, splits and estimators: see the table)",
                 fontsize=8)
    fig.tight_layout()
    return save(fig, out_dir / "literature")
