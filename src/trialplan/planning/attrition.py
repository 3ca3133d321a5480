"""Loss to follow-up per outcome and per process variable.

Outcomes come from different sources: readmission from routine records loses few
participants, a questionnaire at four months loses many.  Each outcome and process
variable may set its own ``attrition``; otherwise the trial-wide
``assumptions.attrition`` applies.  Every number the plan derives from attrition says
which rate it used, through :func:`attrition_for`.
"""

from __future__ import annotations


def attrition_for(trial, variable_id: str) -> dict:
    """The loss to follow-up for one outcome or process variable, and where it comes from.

    Parameters
    ----------
    trial : TrialPlan
        A validated trial file.
    variable_id : str
        The id of an outcome or process variable in the change model.

    Returns
    -------
    dict
        ``{"variable": id, "rate": float, "source": field}``, where ``source`` is
        ``"change_model.outcomes[i].attrition"`` (or ``process_variables``) when the
        variable sets its own rate, else ``"assumptions.attrition"``.

    Raises
    ------
    KeyError
        When ``variable_id`` is not an outcome or process variable.
    """
    cm = trial.model.change_model
    for group in ("outcomes", "process_variables"):
        for i, node in enumerate(getattr(cm, group)):
            if node.id == variable_id:
                if node.attrition is not None:
                    return {"variable": variable_id, "rate": node.attrition,
                            "source": f"change_model.{group}[{i}].attrition"}
                return {"variable": variable_id,
                        "rate": trial.model.assumptions.attrition or 0.0,
                        "source": "assumptions.attrition"}
    raise KeyError(f"{variable_id} is not an outcome or process variable")
