"""The reliability page renderer: tables per area, escaped cells, figures."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("reliability_page", ROOT / "scripts" / "reliability_page.py")
reliability_page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reliability_page)

RUN = {"finished": "2026-12-04 22:00 UTC", "commit": "abc1234", "machine": "Linux x86_64, 2 CPUs, 24 GiB", "python": "3.11.2"}


def record(test, area, outcome="passed", **figures):
    return {
        "test": test,
        "area": area,
        "did": f"did {test}",
        "held": "a | b",
        "figures": figures,
        "outcome": outcome,
        "seconds": 1.5,
    }


def test_page_groups_rows_by_area():
    document = {"run": RUN, "records": [record("t_load", "load", p95_ms=7.5), record("t_fault", "faults")]}

    page = reliability_page.render(document)

    assert page.index("## Faults") < page.index("`t_fault`") < page.index("## Load") < page.index("`t_load`")
    assert "## Secrets" not in page


def test_page_counts_passed_and_prints_figures():
    document = {"run": RUN, "records": [record("a", "load", p95_ms=7.5, requests=100), record("b", "load", "failed")]}

    page = reliability_page.render(document)

    assert "1 of 2 recorded tests passed" in page
    assert "p95_ms = 7.5; requests = 100" in page
    assert "failed (1.5 s)" in page
    assert "commit `abc1234`" in page


def test_page_escapes_pipes_in_cells():
    page = reliability_page.render({"run": RUN, "records": [record("a", "faults")]})

    assert "a \\| b" in page


def test_page_missing_records_fails(tmp_path, capsys):
    status = reliability_page.main(["x", str(tmp_path / "none.json"), str(tmp_path / "page.md")])

    assert status == 1
    assert "make reliability" in capsys.readouterr().err
