"""Sphinx configuration: MyST Markdown pages, numpydoc API, the CLI from click.

The build generates what would otherwise drift: the trial-file reference from
the JSON Schema, and the figures from the bundled example trial file.
"""

from __future__ import annotations

from pathlib import Path

from trialplan import __version__

project = "trialplan"
author = "trialplan developers"
copyright = "2026, trialplan developers"
release = __version__
version = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "numpydoc", "sphinx_click"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
# Formulas are written as $...$ and $$...$$ (amsmath environments inside); Sphinx
# renders them with MathJax, loaded from its CDN when a page is viewed.
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
exclude_patterns = ["_build", "README.md"]
html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["console.css"]
html_title = f"trialplan {__version__}"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"



def _generate(app) -> None:
    from trialplan.docsgen import generate

    generate(Path(app.srcdir) / "_generated")


def setup(app):
    app.connect("builder-inited", _generate)
