"""The example files of docs/examples load, validate and match the pages.

Each jupyterhub_config_*.py loads with traitlets' config loader. Every
section it sets must name a configurable class of JupyterHub or cylc-hub, or
a base of its spawner class. Every key must be a configurable trait of that
class, and each value must pass validation when the classes are instantiated
with the config. Each policy passes ``cylc-hub policy check``, and the outputs and
decisions shown on the pages equal what the code gives now.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator, PAMAuthenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import LocalProcessSpawner, Spawner
from traitlets.config import PyFileConfigLoader

from cylc_hub.policy import load_policy, resolve_permissions
from cylc_hub.services.access.app import CylcAccessService
from cylc_hub.spawners.batch import CylcBatchSpawner
from cylc_hub.spawners.batch_script import render_job_script
from cylc_hub.spawners.form_fields import FormValidationError, parse_choices
from cylc_hub.spawners.local import CylcLocalSpawner
from cylc_hub.spawners.pbs import CylcPBSSpawner
from cylc_hub.spawners.slurm import CylcSlurmSpawner
from cylc_hub.spawners.ssh import CylcSSHSpawner

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
CONFIGS = sorted(EXAMPLES.glob("jupyterhub_config_*.py"))
POLICIES = sorted(EXAMPLES.glob("*.toml"))

KNOWN_CLASSES = {
    cls.__name__: cls
    for cls in (
        JupyterHub,
        ConfigurableHTTPProxy,
        Authenticator,
        PAMAuthenticator,
        Spawner,
        LocalProcessSpawner,
        CylcLocalSpawner,
        CylcSSHSpawner,
        CylcBatchSpawner,
        CylcSlurmSpawner,
        CylcPBSSpawner,
        CylcAccessService,
    )
}


def load_example(path):
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def classes_for(config):
    """Return the classes a section may name: JupyterHub's, cylc-hub's and the spawner's bases."""
    spawner_class = JupyterHub(config=config).spawner_class
    classes = dict(KNOWN_CLASSES)
    for base in spawner_class.mro():
        if hasattr(base, "class_trait_names"):
            classes[base.__name__] = base
    return classes


def access_service(config):
    services = [service for service in config.JupyterHub.services if service["name"] == "cylc-access"]
    assert len(services) == 1
    return services[0]


def test_examples_exist():
    names = {path.name for path in CONFIGS}

    assert {"jupyterhub_config_ssh.py", "jupyterhub_config_slurm.py", "jupyterhub_config_pbs.py"} <= names
    assert len(POLICIES) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_sets_only_real_traits(path):
    config = load_example(path)
    classes = classes_for(config)

    for section, values in config.items():
        assert section in classes, f"{path.name}: c.{section} names no configurable class"
        traits = classes[section].class_trait_names(config=True)
        for key in values:
            assert key in traits, f"{path.name}: c.{section}.{key} is not a configurable trait"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_values_validate(path):
    config = load_example(path)

    spawner_class = JupyterHub(config=config).spawner_class
    spawner = spawner_class(config=config)
    ConfigurableHTTPProxy(config=config)
    PAMAuthenticator(config=config)

    assert spawner.policy_file == "/etc/cylc-hub/policy.toml"
    assert spawner.access_service_url.endswith("/services/cylc-access/")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_service_command_parses(path):
    config = load_example(path)
    command = access_service(config)["command"]

    assert command[1:3] == ["-m", "cylc_hub.services.access"]
    service = CylcAccessService()
    service.parse_command_line(command[3:])
    assert service.policy_file == "/etc/cylc-hub/policy.toml"
    assert service.access_slots > 0


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_defines_every_slot(path):
    config = load_example(path)
    service = CylcAccessService()
    service.parse_command_line(access_service(config)["command"][3:])
    slots = range(service.access_slots)
    roles = {role["name"]: role for role in config.JupyterHub.load_roles}

    for slot in slots:
        assert f"cylc-access-{slot}-viewers" in config.JupyterHub.load_groups
        assert f"cylc-access-{slot}-owners" in config.JupyterHub.load_groups
        role = roles[f"cylc-access-{slot}"]
        assert role["groups"] == [f"cylc-access-{slot}-viewers"]
        assert role["scopes"] == [f"access:servers!group=cylc-access-{slot}-owners"]
    assert "shares" in roles["cylc-access"]["scopes"]
    assert "shares" not in roles["user"]["scopes"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_home_template_exists(path):
    config = load_example(path)

    for directory in config.JupyterHub.template_paths:
        assert (Path(directory) / "home.html").is_file()


def slurm_spawner():
    config = load_example(EXAMPLES / "jupyterhub_config_slurm.py")
    spawner = JupyterHub(config=config).spawner_class(config=config)
    # The partition choices come from sinfo; these stand for its output.
    spawner._loaded_choices = {"partition": parse_choices(["interactive", "compute"])}
    return spawner


def test_slurm_form_accepts_valid_request():
    spawner = slurm_spawner()

    values = spawner.validate_form_values(
        {"partition": "compute", "qos": "long", "walltime": 240, "memory": "4G", "accept_terms": True}
    )

    assert values["walltime"] == 240
    assert values["memory"] == 4096
    assert values["qos"] == "long"


def test_slurm_form_rejects_page_example():
    spawner = slurm_spawner()

    with pytest.raises(FormValidationError) as raised:
        spawner.validate_form_values(
            {"partition": "interactive", "qos": "long", "walltime": 600, "accept_terms": False}
        )

    assert raised.value.errors == {
        "qos": "'long' is not one of the choices: normal",
        "walltime": "must be between 10 and 480",
        "accept_terms": "must be checked",
    }


def test_slurm_template_renders_form_values():
    spawner = slurm_spawner()
    spawner.form_values = {"partition": "compute", "qos": "long", "walltime": 240, "memory": 4096}
    values = {
        "job_name": "cylc-hub-alice",
        "output_path": ".cylc/hub/jobs/cylc-hub-alice.out",
        "token_file": ".cylc/hub/jobs/cylc-hub-alice.token",
        "environment": [("JUPYTERHUB_USER", "alice")],
        "working_directory": "",
        "command": ["python3", "-m", "cylc_hub.spawners.batch_singleuser", "cylc", "hubapp"],
        **spawner.template_values(),
    }

    script = render_job_script(EXAMPLES / "slurm_site.sh.j2", values)

    assert "#SBATCH --qos=long\n" in script
    assert "#SBATCH --partition=compute\n" in script
    assert "#SBATCH --time=240\n" in script
    assert "#SBATCH --mem=4096M\n" in script


@pytest.mark.parametrize("path", POLICIES, ids=lambda path: path.name)
def test_policy_example_passes_check(path):
    result = subprocess.run(
        [sys.executable, "-m", "cylc_hub.cli", "policy", "check", str(path)],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_explain_output_matches_page_example():
    result = subprocess.run(
        [sys.executable, "-m", "cylc_hub.cli", "policy", "explain", "docs/examples/policy_site.toml", "op-forecast", "frank"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stderr
    shown = json.loads((EXAMPLES / "explain_op-forecast_frank.json").read_text())
    assert json.loads(result.stdout) == shown


def test_convert_output_matches_page_example():
    result = subprocess.run(
        [sys.executable, "-m", "cylc_hub.cli", "policy", "convert", "docs/examples/jupyter_config_site_authorization.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "site_authorization_converted.toml").read_text()


DECISION_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|\s*([^|]*)\|")


def decision_rows():
    """Return (owner, viewer, permissions) rows of the decision table on the authorization page."""
    text = (DOCS / "authorization.md").read_text()
    table = text.split("% decisions of examples/policy_site.toml", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in table.splitlines():
        match = DECISION_ROW.match(line)
        if match:
            entries = [entry.strip("` ") for entry in match.group(3).split(",") if entry.strip("` ")]
            rows.append((match.group(1), match.group(2), [] if entries == ["nothing"] else entries))
    return rows


def test_decision_table_has_rows():
    assert len(decision_rows()) >= 6


@pytest.mark.parametrize("owner, viewer, entries", decision_rows())
def test_decision_table_matches_policy(owner, viewer, entries):
    policy = load_policy(EXAMPLES / "policy_site.toml")

    assert policy.decide(owner, viewer).permissions == resolve_permissions(entries)


@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda path: path.name)
def test_example_included_by_a_page(path):
    pages = "\n".join(page.read_text() for page in DOCS.glob("*.md"))

    assert f"examples/{path.name}" in pages


def fenced_block_after(text, marker, language):
    """Return the first fenced block of ``language`` after ``marker`` in ``text``."""
    rest = text.split(marker, 1)[1]
    opening = f"```{language}\n"
    start = rest.index(opening) + len(opening)
    return rest[start : rest.index("\n```", start) + 1]


def test_form_page_messages_match_validation():
    page = (DOCS / "form.md").read_text()
    spawner = slurm_spawner()

    with pytest.raises(FormValidationError) as memory_error:
        spawner.validate_form_values({"walltime": 600, "memory": "lots", "accept_terms": True})
    with pytest.raises(FormValidationError) as example_error:
        spawner.validate_form_values(
            {"partition": "interactive", "qos": "long", "walltime": 600, "accept_terms": False}
        )

    assert fenced_block_after(page, "such as:", "text") == memory_error.value.message + "\n"
    assert fenced_block_after(page, "is rejected with:", "text") == example_error.value.message + "\n"


def test_check_output_matches_page_example(tmp_path):
    page = (DOCS / "authorization.md").read_text()
    (tmp_path / "policy.toml").write_text(fenced_block_after(page, "For this file:", "toml"))

    result = subprocess.run(
        [sys.executable, "-m", "cylc_hub.cli", "policy", "check", "policy.toml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert result.stderr == fenced_block_after(page, "it prints:", "text")
