import numpy as np
import pytest

from lmbrain.analysis.partition import omega, partition


def test_omega_matches_its_definition_on_known_values():
    # controls explain everything the LLM explains -> 100; nothing -> 0; half -> 50
    r2_llm = np.array([0.2, 0.2, 0.2, 0.2])
    r2_ctrl = np.array([0.3, 0.0, 0.1, 0.25])
    r2_joint = np.array([0.3, 0.2, 0.2, 0.30])
    assert omega(r2_llm, r2_ctrl, r2_joint) == pytest.approx([100.0, 0.0, 50.0, 75.0])


def test_omega_is_undefined_without_positive_llm_r2_and_clipped_otherwise():
    values = omega(np.array([0.0, -0.1, 0.1]), np.array([0.0, 0.0, 0.0]), np.array([0.1, 0.1, 0.5]))
    assert np.isnan(values[:2]).all()
    assert values[2] == 0.0  # joint gain larger than the LLM's own R² clips to 0 %


def test_partition_components_add_up():
    rng = np.random.default_rng(0)
    r2 = rng.uniform(0, 0.5, size=(3, 50))
    table = partition(*r2)
    np.testing.assert_allclose(table.unique_llm + table.shared, table.r2_llm)
    np.testing.assert_allclose(table.unique_controls + table.shared, table.r2_controls)
    np.testing.assert_allclose(table.unique_llm + table.unique_controls + table.shared, table.r2_joint)


def test_omega_is_not_defined_where_the_llm_is_not_above_chance():
    from lmbrain.analysis.partition import omega_defined

    low = np.array([-0.001, 0.0, 0.002, np.nan])
    above = omega_defined(low)
    np.testing.assert_array_equal(above, [False, False, True, False])
    r2_llm = np.array([0.00005, 0.01, 0.02, 0.02])
    values = omega(r2_llm, np.full(4, 0.01), r2_llm + 0.005, above)
    assert np.isnan(values[[0, 1, 3]]).all()
    assert values[2] == pytest.approx(omega(r2_llm, np.full(4, 0.01), r2_llm + 0.005)[2])
    table = partition(r2_llm, np.full(4, 0.01), r2_llm + 0.005, llm_above_chance=above)
    assert table.omega.isna().tolist() == [True, True, False, True]
