"""Power to detect each of the three peer-support mechanisms as n grows.

Uses the example trial file's path assumptions (planning values, not published
estimates) and the analytic joint-significance test; compare with the
mechanism-power figure in docs/plan.md.

Run:  python examples/mechanism_power_curves.py
"""

from trialplan.model.checks import example_text, load_trial_text
from trialplan.stats import mediation

trial = load_trial_text(example_text(), "trial.yaml")
a = trial.model.assumptions
print("n      " + "  ".join(f"{p.mechanism:>15}" for p in a.paths))
for n in (200, 400, 600, 800, 1000, 1288):
    row = []
    for p in a.paths:
        outcome = trial.nodes()[p.outcome][1]
        kw = {"outcome": "binary", "base_rate": a.primary.control_rate} \
            if outcome.type == "binary" else {}
        row.append(mediation(a=p.a, b=p.b, n=n, **kw).power)
    print(f"{n:<6} " + "  ".join(f"{power:>15.3f}" for power in row))
