"""How many to recruit across plausible peer-worker ICCs and caseloads, in one call.

A 5 x 4 grid of (ICC, caseload) for the readmission trial of
examples/size_partial_nesting.py; the centre cell is its answer.

Run:  python examples/sensitivity_sweep.py
"""

import numpy as np

from trialplan.stats import proportions

iccs = np.array([0.0, 0.01, 0.03, 0.05, 0.08])
caseloads = np.array([5, 9, 12, 18])
grid = proportions(p1=0.38, p2=0.29, power=0.9, attrition=0.15,
                   clustering="partial", icc=iccs[:, None],
                   cluster_size=caseloads[None, :])

print("ICC    " + "".join(f"{f'caseload {m}':>14}" for m in caseloads))
for i, icc in enumerate(iccs):
    print(f"{icc:<6} " + "".join(f"{int(grid.n_total[i, j]):>14,}"
                                 for j in range(len(caseloads))))
