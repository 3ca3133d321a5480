"""Simulation of the planned trial and its planned analysis.

- :mod:`~trialplan.simulation.spec` turns a trial file and its plan into one
  frozen specification: the data-generating model and the analysis of each
  estimand (the primary outcome and each mechanism);
- :mod:`~trialplan.simulation.generate` draws one trial dataset from it;
- :mod:`~trialplan.simulation.analyse` analyses a dataset as the SAP plans;
- :mod:`~trialplan.simulation.executor` runs chunks of replicates, seeded by
  chunk index, serially, on a local process pool or on a Dask cluster, with a
  checkpoint file;
- :mod:`~trialplan.simulation.run` assembles the operating characteristics
  beside the plan's analytic numbers;
- :mod:`~trialplan.simulation.script` writes the analysis as a standalone
  statsmodels script.
"""




