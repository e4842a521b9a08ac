"""barenet: a from-scratch NumPy deep-learning toolkit."""

__version__ = "0.1.0"
