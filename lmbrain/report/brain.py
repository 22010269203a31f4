"""Brain views: each ROI's unique LLM R² on a glass brain (nilearn), where the dataset's spec locates its ROIs.

A dataset spec may give each ROI's MNI centre (``neuroids.rois.NAME.mni``) with the source of those coordinates
(``neuroids.coordinates_source``); the runner copies them into the manifest (``roi_coordinates``). Datasets without
them get no brain view (``docs/report.md`` says why none of the shipped ones has one).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lmbrain.errors import UsageError
from lmbrain.report.figures import save
from lmbrain.report.names import readable_controls, readable_dataset
from lmbrain.results import file_label, is_untrained

BRAIN_VIEW_COLUMNS = ["model", "controls", "roi", "x", "y", "z", "unique_llm", "q", "significant", "n_subjects"]


def brain_view_table(across: pd.DataFrame, dataset: str, centres: dict[str, list[float]],
                     alpha: float = 0.05) -> pd.DataFrame:
    """Per trained model × control set × located ROI: its MNI centre, the mean unique LLM R² over subjects and its q
    (Benjamini–Hochberg over the ROIs, :func:`~lmbrain.report.across_subjects.across_subject_table`)."""
    if across.empty:
        return pd.DataFrame(columns=BRAIN_VIEW_COLUMNS)
    rows = across[(across["dataset"] == dataset) & (across["quantity"] == "unique_llm")
                  & across["roi"].isin(list(centres)) & ~across["model"].map(is_untrained)]
    table = pd.DataFrame({"model": rows["model"], "controls": rows["controls"], "roi": rows["roi"],
                          "unique_llm": rows["mean"].astype(float), "q": rows["q"].astype(float),
                          "n_subjects": rows["n_subjects"]})
    for axis, name in enumerate("xyz"):
        table[name] = [float(centres[r][axis]) for r in table["roi"]]
    table["significant"] = table["q"] <= alpha
    return table[BRAIN_VIEW_COLUMNS].sort_values(["controls", "model", "roi"]).reset_index(drop=True)


def brain_views(across: pd.DataFrame, manifest: dict, out_dir: Path, alpha: float = 0.05) -> list[Path]:
    """One figure per located dataset × control set: a glass brain per trained model (left, top and right views),
    each ROI a disc at its MNI centre coloured by its mean unique LLM R² (one symmetric scale for the figure), ringed
    in black where q ≤ ``alpha``; the coordinates' source under the figure."""
    written: list[Path] = []
    located_datasets = sorted((manifest.get("roi_coordinates") or {}).items())
    if not located_datasets:
        return written
    try:
        from nilearn import plotting
    except ImportError as error:
        raise UsageError("brain views need nilearn: pip install 'lmbrain[neuro]'") from error
    for dataset, located in located_datasets:
        table = brain_view_table(across, dataset, located["centres"], alpha)
        for controls, part in table.groupby("controls", sort=True):
            models = sorted(part["model"].unique())
            limit = max(float(np.nanmax(np.abs(part["unique_llm"]))), 1e-6)
            fig, axes = plt.subplots(len(models), 1, figsize=(8.0, 2.4 * len(models)), squeeze=False)
            for ax, model in zip(axes[:, 0], models, strict=True):
                mine = part[part["model"] == model]
                coords = mine[["x", "y", "z"]].to_numpy(float)
                display = plotting.plot_markers(mine["unique_llm"].to_numpy(float), coords, node_cmap="RdBu_r",
                                                node_vmin=-limit, node_vmax=limit, node_size=70, display_mode="lzr",
                                                axes=ax, colorbar=True, title=model, annotate=False)
                ringed = coords[mine["significant"].to_numpy(bool)]
                if len(ringed):
                    display.add_markers(ringed, marker_color="none", marker_size=150, edgecolors="black",
                                        linewidths=1.6)
            fig.suptitle(f"{readable_dataset(dataset)}, beyond {readable_controls(controls)}: unique LLM R² per ROI "
                         f"(mean over subjects; black ring: q ≤ {alpha:g})", fontsize=9)
            fig.text(0.01, 0.0, f"ROI centres (MNI): {located['source']}", fontsize=7, ha="left", va="bottom")
            written += save(fig, out_dir / f"brain_{dataset}_{file_label(controls)}")
    return written


def unlocated_note(across: pd.DataFrame, manifest: dict) -> str:
    """A sentence naming the datasets with several ROIs but no ROI coordinates (so no brain view), or ''."""
    if across.empty:
        return ""
    located = set(manifest.get("roi_coordinates") or {})
    counts = across.groupby("dataset")["roi"].nunique()
    missing = [readable_dataset(d) for d, n in counts.items() if n > 1 and d not in located]
    if not missing:
        return ""
    return (f" No brain view of {', '.join(missing)}: the data do not locate their ROIs (a spec's "
            "neuroids.rois.NAME.mni, with coordinates_source, would; docs/report.md).")
