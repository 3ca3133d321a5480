"""Size a peer-support trial whose intervention arm is clustered by peer worker.

Readmission within 12 months falls from 38% to 29% (the CORE trial's arms), with
90% power, 15% attrition, peer-worker caseloads of 9 and an assumed ICC of 0.03.
Compare with docs/size.md and the plan in docs/plan.md.

Run:  python examples/size_partial_nesting.py
"""

from trialplan.stats import proportions

unclustered = proportions(p1=0.38, p2=0.29, power=0.9, attrition=0.15)
nested = proportions(p1=0.38, p2=0.29, power=0.9, attrition=0.15,
                     clustering="partial", icc=0.03, cluster_size=9)

print(f"unclustered: {unclustered.n_analysed_per_arm['control']} analysed per arm, "
      f"recruit {unclustered.n_total}")
de = nested.design_effect["intervention"]
print(f"partially nested: {nested.n_analysed_per_arm['control']} analysed per arm, "
      f"recruit {nested.n_total}, {nested.peer_workers} peer workers, "
      f"design effect {de:.2f} in the intervention arm")
