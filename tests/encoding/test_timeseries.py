"""Word-to-scan resampling, FIR delays, HRF convolution and trimming."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from lmbrain.encoding import (
    hrf,
    hrf_convolve,
    lanczos_resample,
    make_delays,
    mean_within_scans,
    sum_within_scans,
    trim,
    trim_mask,
)
from lmbrain.errors import LmbrainError


def _huth_lanczosinterp2d(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    """The Huth lab's loop (deep-fMRI-dataset ``interpdata.lanczosinterp2D``), written out as reference."""
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for ndi in range(len(newtime)):
        t = (newtime[ndi] - oldtime) * cutoff
        with np.errstate(invalid="ignore", divide="ignore"):
            val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
        val[t == 0] = 1.0
        val[np.abs(t) > window] = 0.0
        sincmat[ndi] = val
    return sincmat @ data


def test_lanczos_equals_huth_reference():
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 600, 1500))  # irregular word onsets over a 10-minute story
    times[10] = 20.0  # a word exactly on a scan time
    values = rng.standard_normal((1500, 3))
    scans = np.arange(0, 600, 2.0)
    for window, mult in [(3, 1.0), (2, 0.5)]:
        np.testing.assert_allclose(lanczos_resample(values, times, scans, window, mult),
                                   _huth_lanczosinterp2d(values, times, scans, window, mult),
                                   rtol=1e-12, atol=1e-12)


def test_lanczos_reconstructs_band_limited_signal():
    """A slow signal sampled densely with jittered onsets comes back once the filter gain is divided out."""
    rng = np.random.default_rng(1)
    times = np.arange(0, 400, 0.1) + rng.uniform(-0.03, 0.03, 4000)
    f = 0.05  # Hz, well below the 0.25 Hz cutoff of 2 s scans
    signal = np.sin(2 * np.pi * f * times) + 0.5 * np.cos(2 * np.pi * 0.02 * times)
    scans = np.arange(20, 380, 2.0)  # away from the edges
    gain = lanczos_resample(np.ones_like(times), times, scans)
    rec = lanczos_resample(signal, times, scans) / gain
    truth = np.sin(2 * np.pi * f * scans) + 0.5 * np.cos(2 * np.pi * 0.02 * scans)
    np.testing.assert_allclose(rec, truth, atol=0.05)


def test_sum_and_mean_within_scans():
    times = np.array([0.1, 0.5, 1.9, 2.0, 5.5, 7.9, 8.5])
    values = np.arange(1, 8, dtype=float)
    scans = np.array([0.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(sum_within_scans(values, times, scans), [1 + 2 + 3, 4, 5, 6])
    np.testing.assert_allclose(mean_within_scans(values, times, scans), [2, 4, 5, 6])
    # a word after the last scan's interval (8.5 >= 6 + 2) is dropped; empty scans are 0
    np.testing.assert_allclose(sum_within_scans(values, times, np.array([0.0, 2.0, 10.0]), tr=2.0),
                               [6, 4, 0])


def test_make_delays_shift_within_runs():
    X = np.arange(1, 11, dtype=float)[:, None] * np.array([1.0, 10.0])
    runs = np.repeat([0, 1], 5)
    D = make_delays(X, delays=(1, 2, -1), runs=runs)
    assert D.shape == (10, 6)
    for j, d in enumerate((1, 2, -1)):
        block = D[:, 2 * j : 2 * j + 2]
        for a in (0, 5):
            for i in range(5):
                src = i - d
                expected = X[a + src] if 0 <= src < 5 else np.zeros(2)
                np.testing.assert_array_equal(block[a + i], expected)


@pytest.mark.parametrize("hrf_model", ["glover", "spm"])
def test_hrf_convolve_equals_nilearn_compute_regressor(hrf_model):
    from nilearn.glm.first_level.hemodynamic_models import compute_regressor

    tr, n = 2.0, 80
    rng = np.random.default_rng(2)
    amp = rng.standard_normal(n)
    frame_times = np.arange(n) * tr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = compute_regressor(np.vstack([frame_times, np.zeros(n), amp]), hrf_model, frame_times,
                                   oversampling=1)
    np.testing.assert_allclose(hrf_convolve(amp[:, None], tr, hrf_model)[:, 0], ref[:, 0], atol=1e-12)
    assert hrf(tr, hrf_model).sum() == pytest.approx(1.0)


def test_hrf_convolve_restarts_at_each_run():
    X = np.zeros((40, 1))
    X[19] = 1.0  # impulse at the end of run 0 must not spill into run 1
    out = hrf_convolve(X, 2.0, runs=np.repeat([0, 1], 20))
    assert np.all(out[20:] == 0)
    single = hrf_convolve(X[20:], 2.0)
    both = hrf_convolve(np.vstack([X[:20], X[20:]]), 2.0, runs=np.repeat([0, 1], 20))
    np.testing.assert_array_equal(both[20:], single)


def test_trim():
    runs = np.repeat(["a", "b"], [6, 4])
    mask = trim_mask(runs, start=2, end=1)
    np.testing.assert_array_equal(np.flatnonzero(mask), [2, 3, 4, 8])
    np.testing.assert_array_equal(trim(np.arange(10), runs, 2, 1), [2, 3, 4, 8])
    with pytest.raises(LmbrainError, match="contiguous"):
        trim_mask(np.array([0, 1, 0]), 0, 0)


def test_high_pass_regresses_out_run_onset_transients():
    """A transient from each run's first scan stays at the run start under the cosines alone (the first test block
    of a single run then holds features unlike any training row) and is gone with the onset terms."""
    from nilearn.signal import create_cosine_drift

    from lmbrain.encoding.timeseries import high_pass, onset_terms

    tr, n = 2.0, 180
    rng = np.random.default_rng(0)
    t = np.arange(n) * tr
    noise = rng.standard_normal((2 * n, 2))
    onset = np.tile(8.0 * np.exp(-t / 30.0) + 3.0 * np.exp(-t / 150.0), 2)[:, None]
    drift = np.tile(np.cos(np.pi * (np.arange(n) + 0.5) / n), 2)[:, None]  # a slow drift the cosines remove
    X = noise + onset + 5.0 * drift
    runs = np.repeat([0, 1], n)
    cosines_only = high_pass(X, tr, 128.0, runs)
    both = high_pass(X, tr, 128.0, runs, onset_s=(10.0, 40.0, 160.0))
    for a in (0, n):  # each run starts over
        def rms(Z: np.ndarray, a: int = a) -> float:
            """RMS of the run's first 15 scans around the run's mean."""
            return float(np.sqrt(((Z[a : a + 15] - Z[a : a + n].mean(0)) ** 2).mean()))

        assert rms(cosines_only) > 1.8 * rms(noise)  # the transient's start survives the cosines
        assert rms(both) < 1.1 * rms(noise)  # and not the onset terms
    # the filter is the projection off [cosines, onset terms] (means kept, as nilearn's cosine filter keeps them)
    design = np.hstack([create_cosine_drift(1 / 128.0, t)[:, :-1], onset_terms(n, tr, (10.0, 40.0, 160.0))])
    design -= design.mean(0)
    run0 = X[:n] - X[:n].mean(0)
    expected = X[:n] - design @ np.linalg.lstsq(design, run0, rcond=None)[0]
    np.testing.assert_allclose(both[:n], expected, atol=1e-9)
    # no onset terms: exactly the cosine filter as before
    np.testing.assert_array_equal(high_pass(X, tr, 128.0, runs, onset_s=()), cosines_only)
    with pytest.raises(LmbrainError, match="onset time constants"):
        high_pass(X, tr, 128.0, runs, onset_s=(0.0,))


def test_high_pass_keeps_the_cosines_on_short_runs():
    """On a 100-scan run exp(-t/160 s) correlates above 0.9 with a cosine, where nilearn would keep only the
    user's confounds and drop its cosine filter: the drift must still go."""
    from lmbrain.encoding.timeseries import high_pass

    tr, n = 2.0, 100
    drift = np.cos(np.pi * 2 * (np.arange(n) + 0.5) / n)[:, None]  # second cosine: slower than the 128 s cut-off
    out = high_pass(drift, tr, 128.0, onset_s=(160.0,))
    assert np.abs(out - out.mean()).max() < 1e-8
