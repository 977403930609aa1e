"""vqblur: a real-time neural audio effect (VQ-VAE codes blurred by Naive Bayes)."""

__version__ = "0.1.0"
