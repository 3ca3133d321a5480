"""Partially nested mediation: level-1 and level-2 R-squared, the control-arm variance
convention and the two meanings of icc_y, against R PowerUpR::power.med_pn21.

R (PowerUpR 1.1.0 built from source), with
    pw <- function(ncp, df) 1 - pt(qt(.975, df), df, ncp) + pt(-qt(.975, df), df, ncp)
and x <- power.med_pn21(...); the path powers are pw(x$ncp[1], x$df[1]) (a) and
pw(x$ncp[2], x$df[2]) (B): the printed table is rounded to 3 decimals.
"""

import math

import pytest

from trialplan.errors import InputError
from trialplan.stats import mediation


def _ours(esa, esb, icc_m, icc_y, m, workers, n_c, **kw):
    # PowerUpR's esa, esB are on the intervention arm's total-variance scale; trialplan's
    # default paths are in within-caseload (control-arm) SD units.
    n_t = m * workers
    return mediation(a=esa / math.sqrt(1 - icc_m),
                     b=esb * math.sqrt(1 - icc_m) / math.sqrt(1 - icc_y),
                     n=n_c + n_t, allocation=n_t / (n_c + n_t), icc_m=icc_m, icc_y=icc_y,
                     cluster_size=m, covariates=0, **kw)


@pytest.mark.parametrize("kw, pa, pb", [
    # power.med_pn21(esa=.4, esB=.4, esb1=.4, mc=FALSE, rhom_trt=.1, rho_trt=.1,
    #   r2m1_ctrl=.3, r2m1_trt=.3, r2m2_trt=0, r2y1_trt=0, r2y2_trt=0,
    #   n_ctrl=100, n_trt=8, J_trt=15)  -> a 0.767094518, B 0.2487166855
    (dict(r2_m=0.3), 0.767094518, 0.2487166855),
    # ... the same with r2m2_trt=.2 -> a 0.7981992787, B 0.2262015634
    (dict(r2_m=0.3, r2_m2=0.2), 0.7981992787, 0.2262015634),
    # ... r2m2_trt=0 and r2y1_trt, r2y2_trt left NULL (PowerUpR derives them from
    #   esb1 = esB and the unconditional rho_trt) -> a 0.767094518, B 0.3045740988
    (dict(r2_m=0.3, icc_y_type="unconditional"), 0.767094518, 0.3045740988),
])
def test_reproduces_powerupr_med_pn21(kw, pa, pb):
    r = _ours(0.4, 0.4, 0.1, 0.1, 8, 15, 100, **kw)
    assert r.path_power["a"] == pytest.approx(pa, abs=1e-9)
    assert r.path_power["b"] == pytest.approx(pb, abs=1e-9)
    assert r.power == pytest.approx(pa * pb, abs=1e-9)


def test_reproduces_powerupr_unconditional_second_design():
    # power.med_pn21(esa=.5, esB=.3, esb1=.3, mc=FALSE, rhom_trt=.15, rho_trt=.2,
    #   r2m1_ctrl=0, r2m1_trt=0, r2m2_trt=0, n_ctrl=90, n_trt=6, J_trt=20)
    #   -> a 0.8519756458, B 0.2353891371
    r = _ours(0.5, 0.3, 0.15, 0.2, 6, 20, 90, icc_y_type="unconditional")
    assert r.path_power["a"] == pytest.approx(0.8519756458, abs=1e-9)
    assert r.path_power["b"] == pytest.approx(0.2353891371, abs=1e-9)


def test_level1_r2_does_not_shrink_peer_worker_variance():
    base = dict(a=0.4, b=0.4, n=300, icc_m=0.1, icc_y=0.1, cluster_size=10)
    level1 = mediation(**base, r2_m=0.4)
    both = mediation(**base, r2_m=0.4, r2_m2=0.4)
    # explaining the peer-worker variance too (the old behaviour) overstates power for a
    assert both.path_power["a"] > level1.path_power["a"]


def test_control_variance_total_is_less_conservative_for_a():
    base = dict(a=0.4, b=0.4, n=300, icc_m=0.1, icc_y=0.1, cluster_size=10)
    within = mediation(**base)
    total = mediation(**base, control_variance="total")
    # same a in control-SD units; under 'total' the intervention arm is no more variable
    # than the control arm, so the a path is estimated more precisely
    assert total.path_power["a"] > within.path_power["a"]
    assert any("control_variance 'total'" in note for note in total.notes)
    assert any("control_variance 'within'" in note for note in within.notes)


def test_individual_b_total_equals_within_when_iccs_equal():
    base = dict(a=0.4, b=0.3, n=300, icc_m=0.1, icc_y=0.1, cluster_size=10,
                b_level="individual")
    assert mediation(**base).path_power["b"] == pytest.approx(
        mediation(**base, control_variance="total").path_power["b"])


@pytest.mark.parametrize("kw, message", [
    (dict(r2_m2=0.2), "apply under partial nesting"),
    (dict(icc_m=0.1, icc_y=0.1, cluster_size=8, control_variance="both"),
     "control_variance must be one of within, total"),
    (dict(icc_m=0.1, icc_y=0.1, cluster_size=8, icc_y_type="marginal"),
     "icc_y_type must be one of conditional, unconditional"),
    (dict(icc_m=0.15, icc_y=0.05, cluster_size=6, icc_y_type="unconditional", b=1.2),
     "explain all of the outcome's variance"),
])
def test_bad_partial_nesting_input(kw, message):
    args = dict(a=0.4, b=0.4, n=300)
    args.update(kw)
    with pytest.raises(InputError, match=message):
        mediation(**args)
