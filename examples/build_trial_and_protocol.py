"""Build a trial file in Python, plan it, and render its protocol draft.

Starts from the bundled example, changes the primary effect and the caseload,
and writes protocol.md (with its figures) into the current directory.

Run:  python examples/build_trial_and_protocol.py
"""

from pathlib import Path

import yaml

from trialplan.model.checks import example_text, load_trial_text
from trialplan.planning import build_plan
from trialplan.render.drafts import write_draft

data = yaml.safe_load(example_text())
data["trial"]["acronym"] = "PEER-EXAMPLE"
data["assumptions"]["primary"]["intervention_rate"] = 0.27
data["assumptions"]["clustering"]["cluster_size"] = 12
trial = load_trial_text(yaml.safe_dump(data, sort_keys=False), "example.yaml")

plan = build_plan(trial)
final = plan["final"]
detectable = ", ".join(final["mechanisms_detectable"]) or "none"
print(f"recruit {final['n_to_recruit']:,} ({final['peer_workers']} peer workers); "
      f"mechanisms detectable: {detectable}")

written = write_draft(trial, Path("protocol.md"), force=True)
print("wrote", ", ".join(written))
