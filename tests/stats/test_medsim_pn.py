"""Caseload sums in the partially nested simulation: equal to the indicator-matrix product."""

import numpy as np
import pytest

from trialplan.stats._medsim_pn import _caseloads, _group_sums


@pytest.mark.parametrize(("n_t", "m"), [(10, 3.0), (101, 9.0), (9, 9.0), (5, 1.0), (7, 20.0)])
def test_group_sums_equal_the_indicator_product(n_t, m):
    labels, j = _caseloads(n_t, m)
    x = np.random.default_rng(n_t).normal(size=(4, n_t))
    indicator = np.zeros((n_t, j))
    indicator[np.arange(n_t), labels] = 1.0
    sizes = np.bincount(labels, minlength=j).astype(float)
    np.testing.assert_allclose(_group_sums(x, labels, sizes), x @ indicator, atol=1e-12)
