"""The API page of the docs lists every path of the cylc-access OpenAPI document."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "cylc_hub" / "services" / "access" / "openapi.yaml"
PAGE = ROOT / "docs" / "api.md"


def documented_operations():
    """Return (METHOD, path) for each row of the page's endpoint table, without query strings."""
    rows = re.findall(r"^\| `(GET|POST|DELETE) (/api/[^`?]+)(?:\?[^`]*)?` \|", PAGE.read_text(), re.MULTILINE)
    return set(rows)


def test_page_lists_every_operation():
    paths = yaml.safe_load(DOCUMENT.read_text())["paths"]
    # A DELETE without a viewer exists only to be rejected, so the page leaves it out.
    operations = {
        (method.upper(), path)
        for path, methods in paths.items()
        for method, operation in methods.items()
        if operation["operationId"] != "revokeGrantWithoutViewer"
    }

    assert documented_operations() == operations
