"""The command line starts without the heavy modules: ``--help`` and ``data list`` import neither torch nor
xarray (nor transformers, pandas, scipy, scikit-learn), and the lazily loaded public APIs still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "xarray", "pandas", "scipy", "sklearn", "matplotlib", "pyarrow", "numpy")


def _modules_after(code: str) -> set[str]:
    """The top-level packages imported by ``code`` run in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in json.loads(result.stderr.splitlines()[-1])}


@pytest.mark.parametrize(
    "args",
    [["--help"], ["data", "list"], ["data", "--help"], ["run", "--help"], ["extract", "--help"], ["fit", "--help"]],
    ids=lambda a: " ".join(a),
)
def test_cheap_commands_import_no_heavy_module(args: list[str]) -> None:
    loaded = _modules_after(f"from lmbrain.cli import run_cli\nassert run_cli({args!r}) == 0")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_importing_the_packages_is_cheap_and_their_names_load_on_use() -> None:
    loaded = _modules_after("import lmbrain.data, lmbrain.features, lmbrain.encoding, lmbrain.cli")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_lazy_public_names_resolve() -> None:
    import lmbrain.data
    import lmbrain.encoding
    import lmbrain.features

    for package in (lmbrain.data, lmbrain.features, lmbrain.encoding):
        assert set(package.__all__) == set(package._EXPORTS)
        for name in package.__all__:
            assert getattr(package, name) is not None
            assert name in dir(package)
        with pytest.raises(AttributeError):
            package.no_such_name  # noqa: B018


def test_the_packaged_models_register_on_first_use() -> None:
    code = (
        "from lmbrain.features.registry import list_models\n"
        "names = list_models()\n"
        "assert {'smollm2-135m', 'minilm-l6', 'gpt2-tiny'} <= set(names), names\n"
    )
    _modules_after(code)
