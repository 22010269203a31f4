"""The one registry idiom: a decorator registers, a lookup by name fails with the alternatives, built-ins load on
first lookup, and every registry of the package is one."""

from __future__ import annotations

import sys

import pytest

from lmbrain.registry import Registry


class UnknownError(Exception):
    pass


def test_register_get_and_the_error_that_lists_the_alternatives():
    reg: Registry = Registry("widget", UnknownError)

    @reg.register("b")
    def b():
        return 2

    reg.register("a", make=lambda fn: ("made", fn))(b)
    assert reg.get("b") is b and reg.get("a") == ("made", b)
    assert reg.names() == ["a", "b"] and [n for n, _ in reg.items()] == ["b", "a"] and "a" in reg and len(reg) == 2
    assert reg.find("c") is None
    with pytest.raises(UnknownError, match=r"^unknown widget 'c'; known: \['a', 'b'\]$"):
        reg.get("c")
    with pytest.raises(UnknownError, match="already registered"):
        reg.add("a", 1, replace=False)
    reg.add("a", 1)  # replacing is explicit and allowed by default
    assert reg.get("a") == 1


def test_builtins_are_imported_on_the_first_lookup(tmp_path, monkeypatch):
    (tmp_path / "toy_builtins.py").write_text("from test_registry_target import REG\nREG.add('builtin', 42)\n")
    (tmp_path / "test_registry_target.py").write_text(
        "from lmbrain.registry import Registry\nREG = Registry('toy', builtins='toy_builtins')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import test_registry_target

    assert "toy_builtins" not in sys.modules
    assert test_registry_target.REG.get("builtin") == 42 and "toy_builtins" in sys.modules


def test_the_packages_registries_are_registries():
    from lmbrain.data.registry import READERS
    from lmbrain.encoding.joint import JOINT, JOINT_KINDS
    from lmbrain.features.controls import REGISTRY
    from lmbrain.features.registry import MODELS

    for registry in (READERS, JOINT, REGISTRY, MODELS):
        assert isinstance(registry, Registry) and len(registry) > 0
    assert tuple(JOINT.names()) == tuple(sorted(JOINT_KINDS))
    assert {"smollm2-135m", "minilm-l6"} <= set(MODELS.names())
    assert {"word_rate", "sound_power", "motion"} <= set(REGISTRY.names())  # registered by scan_controls on lookup
