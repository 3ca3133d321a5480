"""Pure numeric power and sample-size functions: numbers in, frozen results out.

Nothing here reads files or imports the command-line layer.  Every design
leaves exactly one of n, power and the effect unset and solves for it.
"""

from trialplan.stats.designs import (
    event_probability,
    frison_pocock_multiplier,
    means,
    proportions,
    rates,
    survival,
    teerenstra_correlation,
)
from trialplan.stats.mediation import (
    MediationResult,
    mediation,
    to_residual,
    to_standardized,
)
from trialplan.stats.multimed import MultiMediationResult, mediation_multi
from trialplan.stats.result import SizeResult

__all__ = [
    "MediationResult",
    "MultiMediationResult",
    "mediation_multi",
    "SizeResult",
    "mediation",
    "to_residual",
    "to_standardized",
    "event_probability",
    "frison_pocock_multiplier",
    "means",
    "proportions",
    "rates",
    "survival",
    "teerenstra_correlation",
]
