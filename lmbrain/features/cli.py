"""``lmbrain extract``: features of a model for a text file, a table or a dataset, written to one file.

Options are checked before the model or the units are loaded; errors propagate as
:class:`lmbrain.errors.LmbrainError` to :func:`lmbrain.cli.main` (one line, one exit code). Heavy modules
(numpy, torch, transformers, pandas) are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmbrain.clitools import check_suffix, check_writable, echo, parse_layers, writing_to
from lmbrain.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

app = typer.Typer(help="Language-model features, word/sentence-aligned and cached.", no_args_is_help=True)

#: What ``extract`` accepts (equal to lmbrain.features.extract.CONTEXTS / POOLINGS and models.DTYPES; a test
#: keeps them equal) — listed here so that a bad value is refused without importing torch.
CONTEXTS = ("auto", "context", "isolated", "passage-so-far", "full")
POOLINGS = ("last", "mean", "sum")
DTYPES = ("bfloat16", "float16", "float32")
OUT_SUFFIXES = (".safetensors", ".npy")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_options(
    context: str, pooling: str, dtype: str, device: str, layers: str, out: Path, positive: dict[str, int | None]
) -> None:
    """Refuse a bad option value before anything is loaded (a UsageError naming the option)."""
    for option, value, allowed in (("--context", context, CONTEXTS), ("--pooling", pooling, POOLINGS),
                                   ("--dtype", dtype, DTYPES)):
        if value not in allowed:
            raise UsageError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    if not _DEVICE.match(device):
        raise UsageError(f"--device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    for option, number in positive.items():
        if number is not None and number < 1:
            raise UsageError(f"{option} {number}: must be at least 1")
    parse_layers(layers)
    check_suffix(out, OUT_SUFFIXES, "--out")
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; give a file name ending in {' or '.join(OUT_SUFFIXES)}")
    check_writable(out, "--out")


def _write(out: Path, features: np.ndarray, layers: list[int], metadata: dict[str, str]) -> None:
    """Write the features atomically (a temporary file, then a rename); folders created here go on failure."""
    import tempfile

    import numpy as np

    created = []
    folder = out.parent
    while not folder.exists():
        created.append(folder)
        folder = folder.parent
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(fd)
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, features, allow_pickle=False)
        else:
            from safetensors.numpy import save_file

            tensors = {
                f"layer_{layer:03d}": np.ascontiguousarray(features[i]) for i, layer in enumerate(layers)
            }
            save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, out)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if not out.exists():
            for folder in created:  # innermost first
                try:
                    folder.rmdir()
                except OSError:
                    break


@app.command("extract")
def extract(
    model: Annotated[
        str, typer.Argument(help="registry name, hub id, local folder or .gguf; NAME:untrained-SEED")
    ],
    source: Annotated[
        str,
        typer.Argument(
            help=".txt (a unit per line, blank line between contexts), "
            ".csv/.tsv with a text column, or a dataset name"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help=".safetensors (a tensor per layer) or .npy")],
    context: Annotated[str, typer.Option(help="auto | context | isolated | passage-so-far | full")] = "auto",
    pooling: Annotated[str, typer.Option(help="last | mean | sum")] = "last",
    layers: Annotated[str, typer.Option(help="'all', indices and/or depths in [0, 1]: '0,0.5,1.0'")] = "all",
    untrained_seed: Annotated[
        int | None, typer.Option(min=0, help="re-initialise the weights from this seed")
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="window in tokens (default: model maximum)")] = None,
    stride: Annotated[
        int | None, typer.Option(help="window advance in tokens (default: half a window)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="windows per forward pass")] = 16,
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    cache_dir: Annotated[
        Path | None, typer.Option(help="feature cache root (default: $LMBRAIN_CACHE_DIR)")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="extract without reading/writing the cache")
    ] = False,
) -> None:
    """Extract features of MODEL for the units of SOURCE and write them to --out."""
    check_options(context, pooling, dtype, device, layers, out,
                  {"--max-length": max_length, "--stride": stride, "--batch-size": batch_size})
    from lmbrain.features.stimuli_io import read_units

    table = read_units(source)
    options = dict(
        context=context,
        pooling=pooling,
        max_length=max_length,
        stride=stride,
        batch_size=batch_size,
        progress=True,
    )
    features, layer_ids = _layer_features(model, table, layers, untrained_seed, dtype, device, cache_dir, no_cache,
                                          options)
    ids = table["stimulus_id"].astype(str).tolist() if "stimulus_id" in table.columns else []
    metadata = _file_metadata(model, untrained_seed, context, pooling, layer_ids, ids)
    with writing_to(out):
        _write(out, features, layer_ids, metadata)
    echo(
        f"wrote {features.shape[0]} layers x {features.shape[1]} units x {features.shape[2]} to {out}",
        err=True,
    )


def _layer_features(
    model: str,
    table: pd.DataFrame,
    layers: str,
    untrained_seed: int | None,
    dtype: str,
    device: str,
    cache_dir: Path | None,
    no_cache: bool,
    options: dict[str, Any],
) -> tuple[np.ndarray, list[int]]:
    """The requested layers' features for the units of ``table``, and their indices (extracted, or via the cache)."""
    texts = table["text"].tolist()
    context_ids = table["context_id"].tolist()
    positions = table["position"].tolist() if "position" in table.columns else None
    from lmbrain.features.layers import resolve_layers

    if no_cache:
        from lmbrain.features.extract import extract_features
        from lmbrain.features.models import load_model

        lm = load_model(model, untrained_seed, dtype, device)
        layer_ids = resolve_layers(layers, lm.info.n_layers)
        features = extract_features(lm, texts, context_ids, positions, layers=layer_ids, **options)
    else:  # the cache stores every layer: select after reading
        from lmbrain.features.cache import FeatureCache, get_features

        everything = get_features(
            model,
            texts,
            context_ids,
            positions,
            untrained_seed=untrained_seed,
            cache=FeatureCache(cache_dir),
            dtype=dtype,
            device=device,
            **options,
        )
        layer_ids = resolve_layers(layers, everything.shape[0])
        features = everything[layer_ids]
    return features, layer_ids


def _file_metadata(
    model: str, untrained_seed: int | None, context: str, pooling: str, layer_ids: list[int], ids: list[str]
) -> dict[str, str]:
    """The metadata written with the features (strings; JSON for the seed, layers and stimulus ids)."""
    return {
        "model": model,
        "untrained_seed": json.dumps(untrained_seed),
        "context": context,
        "pooling": pooling,
        "layers": json.dumps(layer_ids),
        "stimulus_ids": json.dumps(ids),
    }


models_app = typer.Typer(help="The models lmbrain knows by name.", no_args_is_help=True)


@models_app.command("list")
@app.command("models")
def models() -> None:
    """List the registered models (any hub id, local folder or .gguf file works too)."""
    from lmbrain.features.registry import describe_models

    for entry in describe_models():
        echo(f"{entry['name']:<18} {entry['kind']:<13} {entry['description']}")
        echo(f"{'':<18} size: {entry['size'] or '?'}; training: {entry['training']}")
        echo(f"{'':<18} quantisation: {entry['quantisation']}")
