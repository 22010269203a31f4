"""Whole-brain scale: the full control analysis of one simulated naturalistic fMRI study, chunked over voxels.

Simulated with known ground truth (:func:`lmbrain.data.simulate.mix_features`): ``--scans`` scans (TR 2 s) in
``--stories`` stories, ~2.5 words per second; ``--layers`` LLM-like layers of ``--features`` word features
(layer j = a shared latent scaled by depth + its own noise), Lanczos-resampled to the scans, high-passed and
FIR-delayed (``--delays`` delays) exactly as the study does (:class:`lmbrain.encoding.timeseries.ScanFeatures`);
word rate and sound power as controls, delayed alike. Every subject's voxels mix the true layer
(``TRUE_LAYER``) and the controls, at a per-voxel SNR drawn log-uniformly in [0.01, 1] (expected R² =
snr / (1 + snr)); the responses are written as one float32 ``.npy`` per chunk and read back chunk by chunk.

The analysis (:mod:`lmbrain.analysis.chunked`, equal to the study's unchunked path): the LLM with its layer
chosen inside each of 5 contiguous outer folds (gap 5 scans) per subject by a 5-fold inner CV, 10 alphas; the
controls alone; the joint model (``stacked_simplex``, the study's default); the unique-variance test (1,000
paired sign flips of 20-scan blocks); across-subject tests (:func:`lmbrain.analysis.second_level.across_subjects`)
of the subjects' mean unique R² and mean LLM r. Printed: wall time of each pass and in all, the peak resident
memory of the analysis (``VmHWM`` reset just before it; problem generation excluded and reported apart),
the ground-truth checks, and a JSON summary (``--json``).

``--backend torch --device cuda`` runs the same analysis on a GPU (skipped, with the reason printed, when
CUDA is not available). ``--quick``: a small problem for tests and CI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TR = 2.0
TRUE_LAYER = 3
ALPHAS = np.logspace(-2, 7, 10)
QUICK = dict(voxels=300, subjects=3, scans=600, stories=5, layers=3, features=32, delays=2, chunk=128)
FULL = dict(voxels=50_000, subjects=3, scans=3000, stories=10, layers=6, features=576, delays=4, chunk=2048)


def status(field: str) -> int:
    """A field of /proc/self/status in bytes (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak() -> None:
    """Reset this process's resident high-water mark to its current resident size (Linux)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def make_problem(voxels: int, subjects: int, scans: int, stories: int, layers: int, features: int, delays: int,
                 chunk: int, folder: str, seed: int = 0, backend: str = "numpy", dtype=np.float32):
    """The simulated study as a :class:`ControlProblem` whose responses lie in ``folder`` (one file per chunk)."""
    from lmbrain.analysis.chunked import ControlProblem, NpyTargets
    from lmbrain.analysis.signflip import contiguous_blocks
    from lmbrain.data.simulate import mix_features
    from lmbrain.encoding import ContiguousBlockSplit, RidgeCV
    from lmbrain.encoding.timeseries import ScanFeatures, sum_within_scans

    rng = np.random.default_rng(seed)
    per_story = scans // stories
    runs = np.repeat(np.arange(stories), per_story)
    scans = len(runs)
    starts = np.arange(stories) * (per_story * TR + 100.0)  # stories apart on one clock: no resampling across
    scan_times = (starts[runs] + (np.arange(scans) % per_story) * TR).astype(np.float64)
    onsets = np.concatenate([s + 2.0 + np.cumsum(rng.gamma(4.0, 0.1, size=int(per_story * TR * 2.5)))
                             for s in starts])
    onsets = onsets[onsets < np.repeat(starts + per_story * TR - 4.0, int(per_story * TR * 2.5))]
    n_words = len(onsets)
    scan = ScanFeatures(scan_times, TR, runs=runs, onsets=onsets, delays=tuple(range(1, delays + 1)))
    latent = rng.normal(size=(n_words, features))
    candidates = {}
    for j in range(layers):  # deeper layers share more of the latent (neighbouring layers correlate)
        depth = (j + 1) / layers
        word = depth * latent + (1 - depth + 0.3) * rng.normal(size=(n_words, features))
        candidates[f"layer={j}"] = scan.transform(word).astype(dtype)
    word_rate = sum_within_scans(np.ones((n_words, 1)), onsets, scan_times, tr=TR)
    sound = np.convolve(rng.gamma(2.0, 1.0, scans), np.ones(3) / 3, mode="same")[:, None]
    controls = ScanFeatures(scan_times, TR, runs=runs, delays=tuple(range(1, delays + 1))).transform(
        np.hstack([word_rate, sound])).astype(dtype)
    true = candidates[f"layer={min(TRUE_LAYER, layers - 1)}"]
    files, snrs, target_groups = [], [], []
    for s in range(subjects):
        for c0 in range(0, voxels, chunk):
            width = min(chunk, voxels - c0)
            signal, _, _ = mix_features({"llm": true, "controls": controls}, {"llm": 0.6, "controls": 0.4}, width, rng)
            snr = 10.0 ** rng.uniform(-2, 0, size=width)
            Y = np.sqrt(snr) * signal + rng.normal(size=signal.shape)
            files.append(os.path.join(folder, f"Y_{s}_{c0:07d}.npy"))
            np.save(files[-1], Y.astype(dtype))
            snrs.append(snr)
            target_groups += [f"sub{s + 1:02d}"] * width
    ridge = RidgeCV(alphas=ALPHAS, cv=ContiguousBlockSplit(5, gap=5), backend=backend, cv_method="refit")
    problem = ControlProblem(
        candidates=candidates, controls=controls, targets=NpyTargets(files), target_groups=np.array(target_groups),
        groups=runs, cv=ContiguousBlockSplit(5, gap=5), ridge=ridge, blocks=contiguous_blocks(scans, 20, runs=runs),
        n_permutations=1000, seed=0, chunk_size=chunk, spill_dir=folder)
    truth = {"snr": np.concatenate(snrs), "true_layer": f"layer={min(TRUE_LAYER, layers - 1)}"}
    return problem, truth


def run(voxels: int, subjects: int, scans: int, stories: int, layers: int, features: int, delays: int, chunk: int,
        backend: str = "numpy", workdir: str | None = None, verbose: bool = True) -> dict:
    """Generate the problem, run the analysis, return timings, peak memory and the ground-truth checks."""
    from lmbrain.analysis.chunked import block_inner_scores, block_results, select_layers
    from lmbrain.analysis.second_level import across_subjects

    say = print if verbose else (lambda *a, **k: None)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="bench-scale-") as folder:
        t0 = time.perf_counter()
        problem, truth = make_problem(voxels, subjects, scans, stories, layers, features, delays, chunk, folder,
                                      backend=backend)
        generate = time.perf_counter() - t0
        p = problem.candidates["layer=0"].shape[1]
        say(f"problem: {problem.targets.n_samples} scans, {layers} layers x {p} features ({features} x {delays} "
            f"delays), {problem.controls.shape[1]} control features, {subjects} subjects x {voxels} voxels = "
            f"{problem.n_targets} targets, chunks of {chunk}; generated in {generate:.1f} s "
            f"(resident {status('VmRSS') / 2**30:.2f} GiB)", flush=True)
        base = status("VmRSS")
        reset_peak()
        c0 = time.process_time()
        t0 = time.perf_counter()
        scores = block_inner_scores(problem)
        t1 = time.perf_counter()
        say(f"pass 1 (inner CV of {layers} layers + controls, 5 x 5 folds): {t1 - t0:.1f} s", flush=True)
        selection = select_layers(problem, scores)
        result = block_results(problem, selection)
        t2 = time.perf_counter()
        say(f"pass 2 (refits, stacked joint, scores, unique-variance test): {t2 - t1:.1f} s", flush=True)
        labels = np.unique(problem.target_groups)
        unique_means = [float(np.nanmean(result.unique_r2[problem.target_groups == s])) for s in labels]
        r_means = [float(np.nanmean(result.llm_r[problem.target_groups == s])) for s in labels]
        second = {"unique_r2": across_subjects(np.array(unique_means), alternative="greater").__dict__,
                  "llm_r": across_subjects(np.array(r_means), alternative="greater").__dict__}
        t3 = time.perf_counter()
        cpu = time.process_time() - c0
        peak = status("VmHWM")
    expected = truth["snr"] / (1 + truth["snr"])
    chosen = [layer for fold in selection.selected for layer in fold.values()]
    out = {
        "sizes": dict(voxels=voxels, subjects=subjects, targets=problem.n_targets, scans=problem.targets.n_samples,
                      stories=stories, layers=layers, features=features, delays=delays, chunk=chunk),
        "backend": backend, "threads": _threads(),
        "seconds": {"generate": generate, "pass1": t1 - t0, "pass2": t2 - t1, "second_level": t3 - t2,
                    "analysis": t3 - t0, "analysis_cpu": cpu},
        "memory_gib": {"resident_before": base / 2**30, "peak": peak / 2**30, "analysis_peak_above_before":
                       (peak - base) / 2**30},
        "truth": {"true_layer_chosen": float(np.mean([c == truth["true_layer"] for c in chosen])),
                  "corr_llm_r2_expected_r2": float(np.corrcoef(result.llm_r2, expected)[0, 1]),
                  "mean_llm_r2": float(np.nanmean(result.llm_r2)), "mean_expected_r2": float(expected.mean()),
                  "fraction_p_unique_below_0.05": float(np.mean(result.p_unique < 0.05))},
        "second_level": second,
    }
    say(f"analysis: {out['seconds']['analysis']:.1f} s; peak resident {peak / 2**30:.2f} GiB "
        f"({(peak - base) / 2**30:.2f} GiB above the {base / 2**30:.2f} GiB before it)")
    say(f"truth: true layer chosen in {out['truth']['true_layer_chosen']:.0%} of subject x fold choices; "
        f"corr(R² LLM, expected R²) {out['truth']['corr_llm_r2_expected_r2']:.3f}; across subjects: mean unique "
        f"R² {second['unique_r2']['mean']:.4f} (sign-flip p {second['unique_r2']['p_signflip']:.3f}, "
        f"{subjects} subjects)")
    return out


def _threads() -> int:
    from threadpoolctl import threadpool_info

    return max((info.get("num_threads", 1) for info in threadpool_info()), default=1)


def main() -> None:
    """Parse the sizes, run, print (and optionally write) the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for key, value in FULL.items():
        parser.add_argument(f"--{key}", type=int, default=None, help=f"default {value} ({QUICK[key]} with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small problem (tests, CI)")
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")
    parser.add_argument("--threads", type=int, default=None, help="BLAS/torch threads (default: all cores)")
    parser.add_argument("--workdir", default=None, help="folder for the response chunks (default: the temp dir)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    sizes = {k: (getattr(args, k) if getattr(args, k) is not None else (QUICK if args.quick else FULL)[k])
             for k in FULL}
    backend = "numpy"
    if args.backend == "torch":
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            print(f"SKIPPED: --device cuda but torch {torch.__version__} finds no CUDA device "
                  f"(torch.version.cuda={torch.version.cuda}); nothing was run")
            return
        backend = f"torch_{args.device}"
        if args.threads:
            torch.set_num_threads(args.threads)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    out = run(**sizes, backend=backend, workdir=args.workdir)
    if backend == "torch_cuda":
        import torch

        out["gpu"] = torch.cuda.get_device_name(0)
        out["gpu_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print("SUMMARY " + json.dumps({"seconds": out["seconds"]["analysis"], "peak_gib": out["memory_gib"]["peak"],
                                   "targets": out["sizes"]["targets"], "backend": backend}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
