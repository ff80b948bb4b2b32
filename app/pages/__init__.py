"""App pages: each a module with ``render(settings)``."""
