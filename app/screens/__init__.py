"""App pages, each a module with ``render(settings)``; the sidebar picks one."""
