"""minirec: a multi-modal news recommender written from scratch in NumPy, SciPy and Numba."""

__version__ = "0.1.0"
