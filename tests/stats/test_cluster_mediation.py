"""2-1-1 and 2-2-1 mediation power against R PowerUpR 1.1.0 (built from /work/rsrc/PowerUpR).

Each reference row is PowerUpR's printed power table (3 decimals): path t tests,
then Sobel and joint for the indirect effect (aB in 2-1-1, ab in 2-2-1).
"""

from functools import partial

import pytest

from trialplan.errors import InputError
from trialplan.stats.cluster_mediation import cluster_mediation as _cm
from trialplan.stats.cluster_mediation import from_residual

# PowerUpR's effect sizes are in total-variance units
cluster_mediation = partial(_cm, scale="total")

# R: power.med221(esa=0.6596, esb=0.1891, escp=.1, rho2=.15, r22=.52, r21=.40, r2m2=.50,
#                 n=100, J=40, p=.5)   (Rd example)  -> a .901, b .900, sobel .654, joint .810
# R: power.med221(esa=.3, esb=.1, escp=.1, rho2=.3, r22=.6, r21=.6, r2m2=.6, n=30, J=80, p=.1)
#    (R/cra2.R example)                  -> a .246, b .349, sobel .170, joint .086
# R: power.med221(esa=.5, esb=.3, escp=0, rho2=.1, r22=0, r21=0, r2m2=0, n=20, J=50, p=.5)
#                                         -> a .432, b 1.000, sobel .432, joint .432
# R: power.med221(esa=.4, esb=.35, escp=.05, rho2=.2, r22=.4, r21=.1, r2m2=.3, n=12, J=24,
#                 p=.5, alpha=.01)         -> a .071, b .952, sobel .080, joint .068
MED221 = [
    (dict(a=0.6596, b=0.1891, cprime=0.1, icc_y=0.15, r2_y2=0.52, r2_y1=0.40, r2_m2=0.50,
          cluster_size=100, clusters=40, allocation=0.5), (0.901, 0.900, 0.654, 0.810)),
    (dict(a=0.3, b=0.1, cprime=0.1, icc_y=0.3, r2_y2=0.6, r2_y1=0.6, r2_m2=0.6,
          cluster_size=30, clusters=80, allocation=0.1), (0.246, 0.349, 0.170, 0.086)),
    (dict(a=0.5, b=0.3, icc_y=0.1, cluster_size=20, clusters=50), (0.432, 1.000, 0.432, 0.432)),
    (dict(a=0.4, b=0.35, cprime=0.05, icc_y=0.2, r2_y2=0.4, r2_y1=0.1, r2_m2=0.3,
          cluster_size=12, clusters=24, alpha=0.01), (0.071, 0.952, 0.080, 0.068)),
]

# R: power.med211(esa=0.4135, esb1=0.0670, esB=0.3595, escp=.1, rhom2=.3, rho2=.3, r22=.6,
#                 r21=.6, r2m2=.6, r2m1=.6, n=30, J=80, p=.1)   (Rd example)
#    -> a .901, b1 .899, B .901, aB sobel .642, aB joint .811
# R: power.med211(esa=.6, esB=.5, esb1=.1, escp=.1, rhom2=.3, rho2=.3, r22=.6, r21=.6,
#                 r2m2=.6, r2m1=.6, n=30, J=80, p=.1)  (R/cra2.R example)
#    -> a .999, b1 .998, B .995, sobel .932, joint .995
# R: power.med211(esa=.3, esB=.3, esb1=.2, escp=0, rhom2=.05, rho2=.05, r22=0, r21=0, r2m2=0,
#                 r2m1=0, n=20, J=60, p=.5)  -> a .986, b1 1.000, B .564, sobel .486, joint .557
# R: power.med211(esa=.5, esB=.4, esb1=.3, escp=.1, rhom2=.1, rho2=.08, r22=.3, r21=.2,
#                 r2m2=.2, r2m1=.3, n=15, J=30, p=.4)
#    -> a .999, b1 1.000, B .510, sobel .488, joint .510
MED211 = [
    (dict(a=0.4135, b_within=0.0670, b=0.3595, cprime=0.1, icc_m=0.3, icc_y=0.3, r2_y2=0.6,
          r2_y1=0.6, r2_m2=0.6, r2_m1=0.6, cluster_size=30, clusters=80, allocation=0.1),
     (0.901, 0.899, 0.901, 0.642, 0.811)),
    (dict(a=0.6, b=0.5, b_within=0.1, cprime=0.1, icc_m=0.3, icc_y=0.3, r2_y2=0.6, r2_y1=0.6,
          r2_m2=0.6, r2_m1=0.6, cluster_size=30, clusters=80, allocation=0.1),
     (0.999, 0.998, 0.995, 0.932, 0.995)),
    (dict(a=0.3, b=0.3, b_within=0.2, icc_m=0.05, icc_y=0.05, cluster_size=20, clusters=60),
     (0.986, 1.000, 0.564, 0.486, 0.557)),
    (dict(a=0.5, b=0.4, b_within=0.3, cprime=0.1, icc_m=0.1, icc_y=0.08, r2_y2=0.3,
          r2_y1=0.2, r2_m2=0.2, r2_m1=0.3, cluster_size=15, clusters=30, allocation=0.4),
     (0.999, 1.000, 0.510, 0.488, 0.510)),
]


@pytest.mark.parametrize("kw, want", MED221)
def test_med221_matches_powerupr(kw, want):
    joint = cluster_mediation("2-2-1", **kw)
    sobel = cluster_mediation("2-2-1", test="sobel", **kw)
    got = (joint.path_power["a"], joint.path_power["b"], sobel.power, joint.power)
    assert [round(g, 3) for g in got] == pytest.approx(want, abs=1e-12)
    assert joint.df == {"a": kw["clusters"] - 4, "b": kw["clusters"] - 4}


@pytest.mark.parametrize("kw, want", MED211)
def test_med211_matches_powerupr(kw, want):
    joint = cluster_mediation("2-1-1", **kw)
    sobel = cluster_mediation("2-1-1", test="sobel", **kw)
    got = (joint.path_power["a"], joint.path_power["b_within"], joint.path_power["b"],
           sobel.power, joint.power)
    assert [round(g, 3) for g in got] == pytest.approx(want, abs=1e-12)
    j, n = kw["clusters"], kw["cluster_size"]
    assert joint.df == {"a": j - 4, "b_within": j * n - 3, "b": j - 5}


def test_clusters_solved_are_the_smallest_reaching_the_target():
    # R (loop over J of power.med211(esa=.3, esB=.3, esb1=.2, escp=0, rhom2=.05, rho2=.05,
    # r22=0, r21=0, r2m2=0, r2m1=0, n=20, J=J, p=.5)): joint power prints 0.800 first at
    # J = 103; unrounded it is 0.79994 there, so 104 is the first J at or above 0.8.
    kw = dict(a=0.3, b=0.3, b_within=0.2, icc_m=0.05, icc_y=0.05, cluster_size=20)
    r = cluster_mediation("2-1-1", power=0.8, **kw)
    assert r.clusters == 104
    assert round(cluster_mediation("2-1-1", clusters=103, **kw).power, 3) == 0.8
    assert cluster_mediation("2-1-1", clusters=103, **kw).power < 0.8 <= r.power
    # R: first J with power.med221(esa=.5, esb=.3, escp=0, rho2=.1, r22=0, r21=0, r2m2=0,
    # n=20, J=J, p=.5) joint >= .8 is 120 (power 0.801).
    r = cluster_mediation("2-2-1", a=0.5, b=0.3, icc_y=0.1, cluster_size=20, power=0.8)
    assert r.clusters == 120 and round(r.power, 3) == 0.801


def test_power_rises_with_clusters_and_is_alpha_free_at_zero_indirect_effect():
    kw = dict(a=0.3, b=0.3, icc_m=0.05, icc_y=0.05, cluster_size=20)
    powers = [cluster_mediation("2-1-1", clusters=j, **kw).power for j in (10, 20, 40, 80)]
    assert powers == sorted(powers)
    zero = cluster_mediation("2-2-1", a=0.5, b=0.0, icc_y=0.1, cluster_size=20, clusters=50)
    # joint power with b = 0 is power_a x alpha at most
    assert zero.power <= 0.05 + 1e-12


def test_residual_scale_converts_to_total_variance_units():
    a, b, c = from_residual(0.3, 0.3, 0.1, allocation=0.5)
    base = dict(icc_y=0.05, icc_m=0.05, cluster_size=20, clusters=40)
    res = _cm("2-1-1", 0.3, 0.3, cprime=0.1, **base)
    tot = cluster_mediation("2-1-1", a, b, cprime=c, **base)
    assert res.power == pytest.approx(tot.power, rel=1e-12)
    # Var(M) = 1 + 0.25 * 0.09 on the residual scale
    assert a == pytest.approx(0.3 / (1.0225 ** 0.5), rel=1e-12)


def test_bad_designs_say_why():
    with pytest.raises(InputError, match="icc_m"):
        cluster_mediation("2-1-1", 0.3, 0.3, icc_y=0.05, cluster_size=20, clusters=40)
    with pytest.raises(InputError, match="not feasible"):
        cluster_mediation("2-2-1", 3.0, 0.3, icc_y=0.05, cluster_size=20, clusters=40)
    with pytest.raises(InputError, match="at least 6"):
        cluster_mediation("2-1-1", 0.3, 0.3, icc_m=0.1, icc_y=0.05, cluster_size=20, clusters=5)
