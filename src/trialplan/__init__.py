"""trialplan: plan randomised trials of complex interventions from their programme theory."""

__version__ = "0.1.0"
