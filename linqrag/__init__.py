"""Shared plumbing for the linqrag packages: environment, paths and version."""

from linqrag.settings import apply_offline_env, cache_dir, data_dir

__version__ = "0.1.0"
__all__ = ["__version__", "apply_offline_env", "cache_dir", "data_dir"]
