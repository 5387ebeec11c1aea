"""The configuration reference covers every configurable class of cylc-hub."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

from traitlets import HasTraits

import cylc_hub

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
DOCUMENTED = re.compile(r"^\.\. autoconfigurable:: ([\w.]+)$", re.MULTILINE)


def configurable_classes():
    """Return each cylc-hub class that declares a configurable trait of its own."""
    found = {}
    for module_info in pkgutil.walk_packages(cylc_hub.__path__, "cylc_hub."):
        if module_info.name.endswith(".__main__"):
            # Importing it runs the service.
            continue
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, HasTraits) or not cls.__module__.startswith("cylc_hub."):
                continue
            own = [
                trait
                for trait in cls.class_traits(config=True).values()
                if getattr(trait, "this_class", None) is cls
            ]
            if own:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def documented_classes():
    """Return the classes that the page's ``autoconfigurable`` directives name."""
    classes = []
    for path in DOCUMENTED.findall(PAGE.read_text()):
        module_name, _, class_name = path.rpartition(".")
        classes.append(getattr(importlib.import_module(module_name), class_name))
    return classes


def test_finds_the_spawners():
    classes = configurable_classes()

    assert "cylc_hub.spawners.ssh.CylcSSHSpawner" in classes
    assert "cylc_hub.services.access.app.CylcAccessService" in classes


def test_every_configurable_class_documented():
    documented = documented_classes()

    missing = [
        name
        for name, cls in configurable_classes().items()
        if not any(issubclass(shown, cls) for shown in documented)
    ]

    assert not missing, f"classes missing from docs/reference.md: {missing}"
