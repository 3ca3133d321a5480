"""Combine a validated trial file with the calculators: the trial's sample-size plan."""

from trialplan.planning.analysis import analysis_specs, cace_spec
from trialplan.planning.attrition import attrition_for
from trialplan.planning.plan import PLAN_SCHEMA, build_plan, recruitment_curve

__all__ = ["PLAN_SCHEMA", "analysis_specs", "attrition_for", "build_plan", "cace_spec",
           "recruitment_curve"]
