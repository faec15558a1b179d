"""JAX environments (the package index is filled in once taxi.py and shower.py exist)."""
