"""The lists of choices that more than one layer offers, each named once.

The trial file's schema (``model``), the calculators (``stats``) and the
command line (``cli``) all read these tuples, so a choice added or renamed here
reaches the file format, the validation messages and ``--help`` together.
The module imports nothing, so the command line's start-up does not pay for the
numeric layers to list its options.
"""

# Tests of an indirect effect (stats.mediation); the first is the default.
MEDIATION_TESTS = ("joint", "sobel", "aroian", "vsm", "mc", "bootstrap", "bc-bootstrap")
# Those with a closed form (no simulation), compared side by side by `mediation --compare`.
ANALYTIC_TESTS = ("joint", "sobel", "aroian", "vsm")
# Those that can be simulated (the joint test either way).
SIMULATED_TESTS = ("joint", "mc", "bootstrap", "bc-bootstrap")
# Those a trial file may name in assumptions.mediation_test: the plan runs one test for every
# mechanism, and the bias-corrected bootstrap is left to single `trialplan mediation` questions.
TRIAL_FILE_TESTS = tuple(t for t in MEDIATION_TESTS if t != "bc-bootstrap")

# Clustering of outcomes: none, cluster randomised, or by peer worker in the intervention arm.
CLUSTERINGS = ("none", "cluster", "partial")
# Partial nesting: the control arm's variance is the within-caseload or the total variance.
CONTROL_VARIANCES = ("within", "total")
# Partial nesting: the b path is estimated between caseloads or within caseloads.
B_LEVELS = ("caseload", "individual")

# Closed-form tests of the primary outcome (stats.designs).
SIDES = ("two", "one")
ALTERNATIVES = ("greater", "less")
PROPORTION_METHODS = ("pooled", "arcsine")
RATE_METHODS = ("alt", "ftotal")
SURVIVAL_METHODS = ("schoenfeld", "freedman")

# Not a choice but a limit both the trial file and the calculators check: a path (a, b, c',
# a total effect) beyond this many residual SDs (or units of log odds) is a typing error, not
# a trial (docs/security.md).
PATH_MAX = 20.0
