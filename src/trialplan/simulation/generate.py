"""Draw one simulated trial dataset from a :class:`~trialplan.simulation.spec.SimulationSpec`.

The data-generating model (documented in docs/simulation.md) in the order the
draws are made, so a seed always gives the same dataset:

1. ``arm``: the first ``n_control`` participants are control (0), the rest
   intervention (1); allocation is fixed at the planned numbers.
2. ``cluster``: partial nesting shares the intervention arm among
   ``ceil(n_t / caseload)`` peer workers (caseloads differ by at most one;
   control participants have cluster 0); a cluster-randomised trial does the
   same in both arms; otherwise every participant has cluster 0.
3. a baseline score ``<id>_baseline`` ~ N(0, 1) for each continuous variable
   measured at baseline;
4. each variable in the spec's order (process variables first): its cluster
   effects ~ N(0, tau^2) (in a cluster trial whose baseline has a cluster
   autocorrelation, then the baseline's own cluster effects, with the variable's
   ICC and correlated ``baseline_cluster_corr`` with the variable's whole cluster
   effect, added to its baseline score); then its residuals ``corr * baseline +
   sqrt(1 - corr^2) * N(0, 1)``, ``corr`` being the residual's loading on the
   baseline's participant-level part; continuous variables are ``effect * arm + sum(b * mediator) +
   cluster effect + residual``, binary ones are drawn as Bernoulli with the
   logistic of ``intercept + effect * arm + sum(b * mediator) + cluster effect``;
5. loss to follow-up: one latent dropout score per participant, missing
   completely at random (uniform) or correlated ``MAR_CORR`` with the mean
   baseline score (``missing="mar"``); a variable with attrition ``q`` is
   missing for those whose score falls in its lowest ``q`` quantile, so
   participants lost to a frequent questionnaire include those lost to the
   routine records (monotone dropout).

A binary outcome analysed from a landmark (``Variable.landmark``) adds one
draw after its logistic part: the event before the landmark, with each arm's
risk; the outcome is 1 if either happened, and ``<id>_landmark`` holds the
logistic part for those without the event before the landmark (missing for
the others, and for those lost to follow-up).  A process variable measured in the
   intervention arm only (``arms: intervention``) is missing in the control arm.
"""

from __future__ import annotations

import math

import numpy as np

from trialplan.simulation.spec import MAR_CORR, SimulationSpec
from trialplan.stats import _special as sp


def clusters(spec: SimulationSpec) -> np.ndarray:
    """Cluster label of each participant (0: not clustered)."""
    n_c, n_t = spec.n_control, spec.n_intervention
    out = np.zeros(n_c + n_t, dtype=np.int64)
    if spec.clustering == "none":
        return out
    j_t = spec.clusters_intervention
    if spec.clustering == "cluster":
        j_c = spec.clusters_control
        out[:n_c] = np.arange(n_c) % j_c + 1
        out[n_c:] = np.arange(n_t) % j_t + 1 + j_c
    else:
        out[n_c:] = np.arange(n_t) % j_t + 1
    return out


def _baseline_cluster_effect(v, icc: float, part: np.ndarray, var: float,
                             rng: np.random.Generator) -> np.ndarray:
    """Cluster effects of a baseline with ICC ``icc``, correlated ``baseline_cluster_corr``
    with the variable's own cluster effects ``part`` (variance ``var``)."""
    sd = math.sqrt(icc / (1.0 - icc))
    z = rng.standard_normal(part.size)
    if var <= 0:  # no cluster effect to correlate with
        out = sd * z
    else:
        rho = v.baseline_cluster_corr
        out = sd * (rho * part / math.sqrt(var) + math.sqrt(1.0 - rho * rho) * z)
    out[0] = 0.0
    return out


def generate(spec: SimulationSpec, rng: np.random.Generator) -> dict:
    """One dataset: a dict of equal-length numpy columns (NaN marks a missing value).

    Columns: ``id``, ``arm``, ``cluster``, then for each variable its
    follow-up value and, where measured, ``<id>_baseline``.
    """
    n_c, n_t = spec.n_control, spec.n_intervention
    n = n_c + n_t
    arm = np.concatenate([np.zeros(n_c), np.ones(n_t)])
    cluster = clusters(spec)
    clustered = cluster > 0
    n_clusters = int(cluster.max()) + 1
    data: dict = {"id": np.arange(1, n + 1), "arm": arm.astype(np.int64), "cluster": cluster}
    baselines = {}
    for v in spec.variables:
        if v.baseline:
            baselines[v.id] = rng.standard_normal(n)
    individual = dict(baselines)  # the baselines' participant-level parts
    values: dict = {}
    # Each variable's whole cluster effect (its own plus what its mediators carry), and its
    # variance, for a baseline correlated with it at the cluster level.
    cluster_part: dict = {}
    cluster_var: dict = {}
    for v in spec.variables:
        u = rng.standard_normal(n_clusters) * v.tau
        u[0] = 0.0
        lin = v.effect * arm + np.where(clustered, u[cluster], 0.0)
        for mediator, b in v.parents:
            lin = lin + b * values[mediator]
        cluster_part[v.id] = u + sum(b * cluster_part[m] for m, b in v.parents)
        cluster_var[v.id] = v.tau**2 + sum(b * b * cluster_var[m] for m, b in v.parents)
        if v.baseline_cluster_corr is not None and v.baseline:
            baselines[v.id] = baselines[v.id] + _baseline_cluster_effect(
                v, spec.icc, cluster_part[v.id], cluster_var[v.id], rng)[cluster] * clustered
        if v.type == "continuous":
            e = rng.standard_normal(n)
            if v.baseline:
                e = v.baseline_corr * individual[v.id] + math.sqrt(1.0 - v.baseline_corr**2) * e
            values[v.id] = lin + e
        else:
            p = 1.0 / (1.0 + np.exp(-(v.intercept + lin)))
            y = (rng.random(n) < p).astype(float)
            if v.landmark is not None:
                # The event before the landmark; the logistic part is the event after it.
                before = rng.random(n) < np.where(arm == 1, v.landmark[1], v.landmark[0])
                values[v.landmark_column] = np.where(before, np.nan, y)
                y = np.where(before, 1.0, y)
            values[v.id] = y
    score = rng.standard_normal(n)
    if spec.missing == "mar" and baselines:
        mean_base = sum(baselines.values()) / math.sqrt(len(baselines))
        score = MAR_CORR * mean_base + math.sqrt(1.0 - MAR_CORR**2) * score
    for v in spec.variables:
        y = values[v.id]
        if v.attrition > 0:
            y = np.where(score < float(sp.ndtri(v.attrition)), np.nan, y)
        if v.arms == "intervention":  # not measured in the control arm
            y = np.where(arm == 1, y, np.nan)
        data[v.id] = y
        if v.landmark is not None:
            data[v.landmark_column] = np.where(np.isnan(y), np.nan, values[v.landmark_column])
        if v.baseline:
            data[f"{v.id}_baseline"] = baselines[v.id]
    return data
