"""The project is described in pyproject.toml; this only adds the demo corpus to the wheel.

``corpora.demo`` serves linqrag's own README.md and docs/*.md as the demo corpus. A checkout reads them
where they are; an installed wheel has no checkout, so the build copies them, unchanged, into
``corpora/demo_docs/`` of the wheel (nothing is copied in the source tree, so no copy can drift).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def guide_files() -> list[Path]:
    """README.md and docs/*.md, relative to the checkout: what ``corpora.demo.demo_documents`` reads."""
    return [Path("README.md"), *sorted(p.relative_to(ROOT) for p in (ROOT / "docs").glob("*.md"))]


class BuildPyWithDemoDocs(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself
            return
        target = Path(self.build_lib) / "corpora" / "demo_docs"
        for relative in guide_files():
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(ROOT / relative), str(out))


setup(cmdclass={"build_py": BuildPyWithDemoDocs})
