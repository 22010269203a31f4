import numpy as np
import pytest

from lmbrain.analysis.partition import omega, partition


def test_omega_matches_its_definition_on_known_values():
    # controls explain everything the LLM explains -> 100; nothing -> 0; half -> 50
    r2_llm = np.array([0.2, 0.2, 0.2, 0.2])
    r2_ctrl = np.array([0.3, 0.0, 0.1, 0.25])
    r2_joint = np.array([0.3, 0.2, 0.2, 0.30])
    assert omega(r2_llm, r2_ctrl, r2_joint) == pytest.approx([100.0, 0.0, 50.0, 75.0])


def test_omega_is_undefined_without_positive_llm_r2_and_never_clipped():
    values = omega(np.array([0.0, -0.1, 0.1]), np.array([0.0, 0.0, 0.0]), np.array([0.1, 0.1, 0.5]))
    assert np.isnan(values[:2]).all()
    assert values[2] == pytest.approx(-400.0)  # joint gain 5x the LLM's own R²: as measured, not 0 %
    # the joint model below the controls alone (negative unique R²): above 100, not 100
    assert omega(np.array([0.2]), np.array([0.3]), np.array([0.29]))[0] == pytest.approx(105.0)


def test_omega_words_and_text_never_round_a_value_outside_0_100_onto_its_bounds():
    from lmbrain.analysis.partition import LOST_TO_CONTROLS, UNIQUE_ABOVE_LLM, format_omega, omega_note

    assert omega_note(103.0) == LOST_TO_CONTROLS and omega_note(-9.0) == UNIQUE_ABOVE_LLM
    assert omega_note(100.0) == "" and omega_note(0.0) == "" and omega_note(np.nan) == ""
    assert format_omega(103.2) == "103" and format_omega(-9.4) == "-9" and format_omega(92.26) == "92"
    assert format_omega(100.04) == "100.04" and format_omega(100.3, 0) == "100.3"
    assert format_omega(100.000002) == "> 100.000" and format_omega(-1e-7) == "< 0.000"  # never '100' or '0'
    assert format_omega(-0.3) == "-0.3" and format_omega(99.7) == "100"  # inside [0, 100]: plain rounding
    assert format_omega(np.nan) == ""


def test_mean_of_per_subject_omegas_leaves_out_undefined_subjects():
    from lmbrain.analysis.partition import omega_subject_mean

    r2_llm = np.array([0.2, 0.1, -0.05, 0.2])
    r2_ctrl = np.array([0.1, 0.1, 0.1, 0.3])
    r2_joint = np.array([0.25, 0.15, 0.1, 0.29])
    per_subject = [25.0, 50.0, 105.0]  # the third subject (R² LLM <= 0) has no omega
    value, used = omega_subject_mean(r2_llm, r2_ctrl, r2_joint)
    assert used == 3 and value == pytest.approx(np.mean(per_subject))
    ratio_of_means = omega(np.array([r2_llm.mean()]), np.array([r2_ctrl.mean()]), np.array([r2_joint.mean()]))[0]
    assert ratio_of_means != pytest.approx(value)  # the two definitions differ
    assert omega_subject_mean(np.array([-0.1]), np.array([0.0]), np.array([0.0]))[1] == 0


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
