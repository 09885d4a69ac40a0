"""mas: Model Alignment Search experiment runner."""

__version__ = "0.1.0"
