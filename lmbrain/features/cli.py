"""``lmbrain extract``: features of a model for a text file, a table or a dataset, written to one file."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from lmbrain.errors import LmbrainError
from lmbrain.features.cache import FeatureCache, get_features
from lmbrain.features.extract import extract_features
from lmbrain.features.layers import resolve_layers
from lmbrain.features.models import load_model
from lmbrain.features.registry import describe_models
from lmbrain.features.stimuli_io import read_units

app = typer.Typer(help="Language-model features, word/sentence-aligned and cached.", no_args_is_help=True)


def _write(out: Path, features: np.ndarray, layers: list[int], metadata: dict[str, str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if out.suffix == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, features, allow_pickle=False)
        else:
            from safetensors.numpy import save_file

            tensors = {
                f"layer_{layer:03d}": np.ascontiguousarray(features[i]) for i, layer in enumerate(layers)
            }
            save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
    context: Annotated[str, typer.Option(help="auto | isolated | passage-so-far | full")] = "auto",
    pooling: Annotated[str, typer.Option(help="last | mean | sum")] = "last",
    layers: Annotated[str, typer.Option(help="'all', indices and/or depths in [0, 1]: '0,0.5,1.0'")] = "all",
    untrained_seed: Annotated[
        int | None, typer.Option(help="re-initialise the weights from this seed")
    ] = None,
    max_length: Annotated[int | None, typer.Option(help="window in tokens (default: model maximum)")] = None,
    stride: Annotated[
        int | None, typer.Option(help="window advance in tokens (default: half a window)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="windows per forward pass")] = 16,
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16")] = "float32",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    cache_dir: Annotated[
        Path | None, typer.Option(help="feature cache root (default: $LMBRAIN_CACHE_DIR)")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="extract without reading/writing the cache")
    ] = False,
) -> None:
    """Extract features of MODEL for the units of SOURCE and write them to --out."""
    try:
        table = read_units(source)
        texts = table["text"].tolist()
        context_ids = table["context_id"].tolist()
        positions = table["position"].tolist() if "position" in table.columns else None
        options = dict(
            context=context,
            pooling=pooling,
            max_length=max_length,
            stride=stride,
            batch_size=batch_size,
            progress=True,
        )
        if no_cache:
            lm = load_model(model, untrained_seed, dtype, device)
            layer_ids = resolve_layers(layers, lm.info.n_layers)
            features = extract_features(lm, texts, context_ids, positions, layers=layer_ids, **options)
        else:  # the cache stores every layer: select after reading
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
        ids = table["stimulus_id"].astype(str).tolist() if "stimulus_id" in table.columns else []
        metadata = {
            "model": model,
            "untrained_seed": json.dumps(untrained_seed),
            "context": context,
            "pooling": pooling,
            "layers": json.dumps(layer_ids),
            "stimulus_ids": json.dumps(ids),
        }
        _write(out, features, layer_ids, metadata)
    except LmbrainError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote {features.shape[0]} layers x {features.shape[1]} units x {features.shape[2]} to {out}",
        err=True,
    )


@app.command("models")
def models() -> None:
    """List the registered models (any hub id, local folder or .gguf file works too)."""
    for entry in describe_models():
        sys.stdout.write(f"{entry['name']:<18} {entry['kind']:<13} {entry['description']}\n")
