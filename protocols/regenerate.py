"""Regenerate the drafts committed beside each trial file in protocols/.

Run from the project root:  python protocols/regenerate.py
tests/render/test_protocols.py fails when a committed draft no longer matches.
"""

from __future__ import annotations

from pathlib import Path

from trialplan.model.checks import load_trial
from trialplan.render.documents import DOCUMENTS
from trialplan.render.drafts import write_draft

ROOT = Path(__file__).resolve().parent


def main() -> None:
    for trial_file in sorted(ROOT.glob("*/trial.yaml")):
        trial = load_trial(trial_file)
        for document in DOCUMENTS:
            for path in write_draft(trial, trial_file.parent / f"{document}.md",
                                    document=document, force=True):
                print("wrote", Path(path).relative_to(ROOT.parent))


if __name__ == "__main__":
    main()
