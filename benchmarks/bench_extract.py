"""Feature extraction benchmark: lmbrain vs Brain-Score Language's per-unit re-run vs bare forward passes.

Side by side with one model (default smollm2-135m), all layers, last-token pooling:
  (a) lmbrain ``get_features`` with an empty cache: tokenise once, align by offsets, one forward pass per
      context window, pool, stream every layer to the cache and read it back verified (the warm-cache time
      is printed too);
  (b) the method Brain-Score Language uses (``HuggingfaceSubject.digest_text``): for every unit, re-run the
      model on ``" ".join(units so far)``, left-truncated to the context size, and keep its last token
      (batch of one, base model without the LM head, so (b) is not charged for logits);
  (c) bare batched forward passes over exactly the token sequences (a) runs, in the same batches, with
      ``output_hidden_states``: no alignment, no pooling, no caching.
Workloads: the Pereira 2018 sentences in passage context, and the first words of a Natural Stories story with
a 256-token context. Units are whitespace-normalised for all three methods (Pereira has double and trailing
spaces), so (a) and (b) read the same tokens. The data files are read directly (no lmbrain loaders).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch

from lmbrain.features import FeatureCache, get_features, load_model
from lmbrain.features.alignment import normalize_unit
from lmbrain.features.extract import batches, padded, plan_runs, prepare_units, resolve_context, token_budget


@dataclass
class Workload:
    name: str
    texts: list[str]
    context_ids: list[object]
    positions: list[int]
    max_length: int | None  # context size in tokens (None: the model's maximum)


def data_dir() -> Path:
    value = os.environ.get("LMBRAIN_DATA_DIR")
    return Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / "datasets"


def pereira(n_sentences: int) -> Workload:
    table = pd.read_csv(data_dir() / "pereira2018_langnet" / "pereira2018_stimuli.csv")
    table = table.sort_values(["experiment", "presentation_index"], ascending=[False, True]).head(n_sentences)
    return Workload(
        f"Pereira 2018: {len(table)} sentences in {table['passage_id'].nunique()} passages",
        table["sentence"].tolist(),
        table["passage_id"].tolist(),
        table["sentence_position"].astype(int).tolist(),
        None,
    )


def story(n_words: int, item: int, context_tokens: int) -> Workload:
    table = pd.read_csv(
        data_dir() / "naturalstories" / "all_stories.tok", sep="\t", keep_default_na=False, quoting=3
    )
    words = table[table["item"] == item].sort_values("zone").head(n_words)
    return Workload(
        f"Natural Stories story {item}: first {len(words)} words, {context_tokens}-token context",
        words["word"].tolist(),
        [item] * len(words),
        list(range(len(words))),
        context_tokens,
    )


def run_a(lm, w: Workload, batch_size: int) -> tuple[np.ndarray, float, float]:
    with tempfile.TemporaryDirectory() as root:
        cache = FeatureCache(root)
        start = time.perf_counter()
        out = get_features(
            lm,
            w.texts,
            w.context_ids,
            w.positions,
            cache=cache,
            max_length=w.max_length,
            batch_size=batch_size,
            progress=False,
        )
        cold = time.perf_counter() - start
        start = time.perf_counter()
        get_features(
            lm,
            w.texts,
            w.context_ids,
            w.positions,
            cache=cache,
            max_length=w.max_length,
            batch_size=batch_size,
            progress=False,
        )
        warm = time.perf_counter() - start
    return out, cold, warm


def run_b(lm, w: Workload) -> tuple[np.ndarray, float, int]:
    """Brain-Score Language's digest_text: per unit, the whole context so far, last token kept."""
    units = prepare_units(w.texts, w.context_ids, w.positions)
    out = np.zeros((lm.info.n_layers, len(w.texts), lm.info.hidden_size), dtype=np.float32)
    tok = lm.tokenizer
    side, tok.truncation_side = tok.truncation_side, "left"
    limit = w.max_length or lm.info.max_length
    n_tokens = 0
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            for group in units.groups:
                parts = [units.texts[row] for row in group]
                for k, row in enumerate(group):
                    context = " ".join(parts[: k + 1])
                    enc = tok(context, truncation=True, max_length=limit, return_tensors="pt")
                    hidden = lm.hidden_states(
                        enc["input_ids"].to(lm.device), enc["attention_mask"].to(lm.device)
                    )
                    out[:, row] = torch.stack([h[0, -1] for h in hidden]).float().cpu().numpy()
                    n_tokens += enc["input_ids"].shape[1]
    finally:
        tok.truncation_side = side
    return out, time.perf_counter() - start, n_tokens


def run_c(lm, w: Workload, batch_size: int) -> tuple[float, int, int]:
    """Bare batched forward passes over (a)'s token sequences (planned outside the timer)."""
    units = prepare_units(w.texts, w.context_ids, w.positions)
    runs = plan_runs(lm, units, resolve_context("auto", lm.info.kind), w.max_length)
    pad = lm.tokenizer.pad_token_id or 0
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches(runs, batch_size, token_budget(lm)):
            ids, mask = padded(batch, pad, lm.device)
            lm.hidden_states(ids, mask)
    return time.perf_counter() - start, len(runs), sum(len(r.ids) for r in runs)


def window_check(lm, w: Workload, n_checks: int) -> float:
    """Max abs diff of (a) against a plain run of each checked unit's own window prefix (windows exact?)."""
    units = prepare_units(w.texts, w.context_ids, w.positions)
    runs = plan_runs(lm, units, resolve_context("auto", lm.info.kind), w.max_length)
    ours = get_features(
        lm,
        w.texts,
        w.context_ids,
        w.positions,
        cache=FeatureCache(tempfile.mkdtemp()),
        max_length=w.max_length,
        progress=False,
    )
    pairs = [(run, row, tokens) for run in runs for row, tokens in run.pools]
    pick = np.linspace(0, len(pairs) - 1, min(n_checks, len(pairs))).astype(int)
    worst = 0.0
    with torch.inference_mode():
        for i in pick:
            run, row, tokens = pairs[i]
            ids = torch.tensor([run.ids[: tokens[-1] + 1]], device=lm.device)
            hidden = lm.hidden_states(ids, torch.ones_like(ids))
            ref = torch.stack([h[0, -1] for h in hidden]).float().cpu().numpy()
            worst = max(worst, float(np.abs(ours[:, row] - ref).max()))
    return worst


def same_context_rows(lm, w: Workload) -> np.ndarray:
    """Units whose whole context so far fits the window: (a) and (b) read exactly the same tokens."""
    units = prepare_units(w.texts, w.context_ids, w.positions)
    limit = w.max_length or lm.info.max_length
    keep = np.zeros(len(w.texts), dtype=bool)
    for group in units.groups:
        for k, row in enumerate(group):
            context = " ".join(units.texts[r] for r in group[: k + 1])
            keep[row] = len(lm.tokenizer(context)["input_ids"]) <= limit
    return keep


def _list(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def bench(lm, w: Workload, batch_size: int, repeats: int, n_checks: int) -> dict[str, float]:
    print(f"\n== {w.name}")
    n_tokens = sum(len(lm.tokenizer(normalize_unit(t))["input_ids"]) for t in w.texts)
    times_a, times_c, warm = [], [], []
    for _ in range(repeats):  # interleaved so that load changes hit both alike
        a, t_a, t_warm = run_a(lm, w, batch_size)
        t_c, n_runs, n_forwarded = run_c(lm, w, batch_size)
        times_a.append(t_a)
        times_c.append(t_c)
        warm.append(t_warm)
    b, t_b, n_b = run_b(lm, w)
    t_a, t_c = float(np.median(times_a)), float(np.median(times_c))
    print(f"units: {len(w.texts)}  tokens in the units: ~{n_tokens}")
    print(
        f"(a) lmbrain, empty cache: {t_a:8.2f} s  (median of {repeats}: {_list(times_a)});"
        f" warm cache: {np.median(warm):.3f} s; {n_runs} forward sequences, {n_forwarded} tokens"
    )
    print(f"(b) Brain-Score re-run:   {t_b:8.2f} s  ({len(w.texts)} forward passes, {n_b} tokens)")
    print(f"(c) bare batched forward: {t_c:8.2f} s  (median of {repeats}: {_list(times_c)})")
    same = same_context_rows(lm, w)
    diff = np.abs(a[:, same] - b[:, same])
    rel = float((diff / np.maximum(1.0, np.abs(b[:, same]))).max()) if same.any() else float("nan")
    print(
        f"(a) vs (b), {int(same.sum())} units with the same context: max abs diff {diff.max():.3g} "
        f"(max |diff| / max(1, |value|): {rel:.2g}; largest |value| {np.abs(b).max():.3g})"
    )
    result = {
        "a": t_a,
        "b": t_b,
        "c": t_c,
        "b_over_a": t_b / t_a,
        "a_over_c": t_a / t_c,
        "max_abs_diff": float(diff.max()),
    }
    if (~same).any():
        r = np.mean(
            [
                np.corrcoef(a[layer, ~same].ravel(), b[layer, ~same].ravel())[0, 1]
                for layer in range(1, a.shape[0])
            ]
        )
        worst = window_check(lm, w, n_checks)
        print(
            f"(a) vs (b), {int((~same).sum())} units past the first window: contexts differ by design "
            f"((a): >= ~{(w.max_length or 0) // 2} tokens in a sliding window, (b): exactly the last "
            f"{w.max_length}); mean Pearson r over layers 1.. = {r:.4f}"
        )
        print(
            f"(a) vs a plain re-run of each unit's window prefix ({n_checks} units): max abs diff {worst:.3g}"
        )
        result["window_check_max_abs_diff"] = worst
    print(f"ratios: (b)/(a) = {t_b / t_a:.1f}x  (a)/(c) = {t_a / t_c:.3f}")
    return result


_LOAD = (
    "import time; t = time.perf_counter(); from lmbrain.features import load_model; "
    "i = time.perf_counter(); load_model({name!r}); j = time.perf_counter(); load_model({name!r}); "
    "print(i - t, j - i, time.perf_counter() - j)"
)


def load_times(name: str) -> list[tuple[float, float]]:
    """(import, load) seconds in a fresh process with an empty model cache, then twice with it filled."""
    repo = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LMBRAIN_CACHE_DIR": cache, "PYTHONPATH": repo}
        times = []
        for _ in range(3):
            done = subprocess.run(
                [sys.executable, "-c", _LOAD.format(name=name)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            times.append(tuple(float(x) for x in done.stdout.strip().splitlines()[-1].split()))
    return times


def warm_up(lm) -> None:
    """One small forward pass so that one-time kernel set-up is not charged to the first method timed."""
    with torch.inference_mode():
        ids = torch.tensor([lm.tokenizer("Warm up the kernels, please.")["input_ids"]], device=lm.device)
        lm.hidden_states(ids, torch.ones_like(ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pereira-sentences", type=int, default=627)
    parser.add_argument("--story-words", type=int, default=500)
    parser.add_argument("--story-item", type=int, default=1)
    parser.add_argument("--context-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="runs of (a) and (c); (b) runs once")
    parser.add_argument("--window-checks", type=int, default=40)
    parser.add_argument("--no-load-times", action="store_true", help="skip the cold/cached load measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if not args.no_load_times:
        (imp, cold, again), *cached = load_times(args.model)
        print(
            f"load_model in a new process after {imp:.1f} s of imports: empty model cache (GGUF "
            f"de-quantised and saved) {cold:.1f} s, then in the same process {again:.2f} s; "
            "new processes with the cache filled: "
            + ", ".join(f"{first:.2f} s (then {second:.2f} s)" for _, first, second in cached)
        )

    start = time.perf_counter()
    lm = load_model(args.model)
    load = time.perf_counter() - start
    print(
        f"model {lm.info.identity}: {lm.info.n_layers} layers x {lm.info.hidden_size}, {lm.device}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; load {load:.2f} s"
    )
    warm_up(lm)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    p = bench(lm, pereira(args.pereira_sentences), args.batch_size, args.repeats, args.window_checks)
    s = bench(
        lm,
        story(args.story_words, args.story_item, args.context_tokens),
        args.batch_size,
        args.repeats,
        args.window_checks,
    )
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"SUMMARY Pereira: (b)/(a) {p['b_over_a']:.1f}x [target >= 2], "
        f"(a)/(c) {p['a_over_c']:.3f} [<= 1.15]; "
        f"story words: (b)/(a) {s['b_over_a']:.1f}x [>= 10], (a)/(c) {s['a_over_c']:.3f} [<= 1.15]; "
        f"(a)=(b) max abs diff {p['max_abs_diff']:.2g} (Pereira), "
        f"{s['max_abs_diff']:.2g} (story, same context)"
    )


if __name__ == "__main__":
    main()
