"""Sphinx configuration of the cylc-hub site administrator's guide.

Build with ``make docs`` from the repository root; the HTML goes to
build/docs/html. Warnings are errors there, so a broken reference, a missing
include or a help string that is invalid reST fails the build.
"""

import cylc_hub

project = "cylc-hub"
author = "cylc-hub contributors"
copyright = "cylc-hub contributors"
version = release = cylc_hub.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Heading anchors let pages link to one another's sections as page.md#heading.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# The reference documents the configurable traits of each class, not its methods.
autodoc_default_options = {"members": False}
autodoc_typehints = "none"

html_theme = "pydata_sphinx_theme"
html_title = "cylc-hub"
html_static_path = ["_static"]
html_css_files = ["cylc-hub.css"]
# Every page is in the top bar, so the left sidebar would only repeat it.
html_sidebars = {"**": []}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}


def skip_inherited_traits(app, what, name, obj, skip, options):
    """Leave out the traits that JupyterHub's own classes define.

    JupyterHub's documentation describes those, and cylc-hub's pages name the
    ones whose defaults cylc-hub changes. A trait's ``this_class`` is the
    class that declares it.
    """
    declared_by = getattr(obj, "this_class", None)
    if declared_by is not None and not declared_by.__module__.startswith("cylc_hub."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_inherited_traits)
