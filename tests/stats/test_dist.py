"""The rule for special functions: numpy for a lone closed form, scipy once it is imported."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.special as sc

from trialplan.stats import _dist, _special

RNG = np.random.default_rng(7)


def test_with_scipy_imported_the_calls_go_to_scipy_and_agree_with_numpy():
    assert _dist._scipy() is sc
    df = RNG.uniform(2, 500, 400)
    delta = RNG.uniform(-8, 8, 400)
    t = RNG.uniform(0, 6, 400)
    np.testing.assert_allclose(_dist.nct_abs_sf(df, delta, t),
                               _special.nct_abs_sf(df, delta, t), atol=1e-9)
    np.testing.assert_allclose(_dist.nctdtr(df, delta, t), _special.nctdtr(df, delta, t),
                               atol=1e-9)
    p = RNG.uniform(1e-6, 1 - 1e-6, 400)
    np.testing.assert_allclose(_dist.stdtrit(df, p), _special.stdtrit(df, p), rtol=1e-9)
    np.testing.assert_allclose(_dist.ndtri(p), _special.ndtri(p), rtol=1e-12)
    np.testing.assert_allclose(_dist.ndtr(delta), _special.ndtr(delta), rtol=1e-13)


def test_scipy_nan_cells_of_the_noncentral_t_cdf_are_filled():
    # scipy 1.17: sc.nctdtr(490.2, -5.81, 5.94) is nan although the CDF is 1.
    df, delta, t = np.array([490.23658594, 10.0]), np.array([-5.80908956, 1.0]), np.array(
        [5.94255314, 2.0])
    out = _dist.nctdtr(df, delta, t)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _special.nctdtr(df, delta, t), atol=1e-12)


def test_both_tails_at_zero_effect_equal_alpha_with_scipy():
    df = np.array([3.0, 30.0, 3000.0])
    crit = sc.stdtrit(df, 0.975)
    np.testing.assert_allclose(_dist.nct_abs_sf(df, 0.0, crit), 0.05, rtol=1e-10)


@pytest.mark.parametrize(("code", "loaded"), [
    ("from trialplan.stats import means; means(d=0.5, power=0.8)", False),
    ("from trialplan.stats import mediation; mediation(a=0.3, b=0.3, power=0.8)", True),
])
def test_a_lone_closed_form_never_imports_scipy_special(code, loaded):
    out = subprocess.run([sys.executable, "-c", code + "; import sys; "
                          "print('scipy.special' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == str(loaded)


@pytest.mark.parametrize("p", [0.975, 0.95, 0.995, 0.9995, 0.025, 0.5, 1 - 1e-6, 1 - 5e-11])
def test_many_t_quantiles_at_one_probability_agree_with_scipy(p):
    # The interpolated path (>= 4096 cells, one probability) against scipy cell by cell,
    # over df from 1 (computed exactly below 30) to 1e7, with inf and nan among them.
    df = np.exp(RNG.uniform(0.0, np.log(1e7), 20_000))
    df[:4] = [np.inf, np.nan, 30.0, 29.999]
    got, want = _dist.stdtrit(df, p), sc.stdtrit(df, p)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = np.isfinite(want)
    assert np.array_equal(got[~ok & ~np.isnan(want)], want[~ok & ~np.isnan(want)])
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[df < 30], want[df < 30])  # exact there


def test_many_t_quantiles_fall_back_to_exact_when_the_check_points_disagree():
    # Far in the tail the interpolation error exceeds 1e-12, so every cell is exact.
    df = np.linspace(30.0, 60.0, 5000)
    np.testing.assert_array_equal(_dist.stdtrit(df, 1 - 1e-14), sc.stdtrit(df, 1 - 1e-14))


def test_a_few_t_quantiles_are_exact():
    df = RNG.uniform(30, 600, 4095)
    np.testing.assert_array_equal(_dist.stdtrit(df, 0.975), sc.stdtrit(df, 0.975))
