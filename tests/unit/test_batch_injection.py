"""No form or REST value can add a line or a command to a job script or a command line."""

import asyncio
import re
import shlex
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado import web

from cylc_hub.spawners.batch_script import ScriptValueError, render_job_script
from cylc_hub.spawners.pbs import CylcPBSSpawner
from cylc_hub.spawners.slurm import CylcSlurmSpawner
from cylc_hub.spawners.transport.base import CommandResult

HOSTILE = [
    "debug\n#SBATCH --uid=0",
    "workq\n#PBS -u root",
    "x; rm -rf ~",
    "$(id)",
    "`id`",
    "a'b\"c",
    "a\rb",
    "a\0b",
    "demo && curl http://127.0.0.1/",
    "--partition=all",
    "60\n",
    "#SBATCH",
    "\n",
    " ",
    "*",
]

values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=st.sampled_from(list("ab1;|&$`'\"\\\n\r #!(){}<>*?~=-_./:")), max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from(HOSTILE), max_size=2),
)

DIRECTIVE_LINE = re.compile(r"#(SBATCH --[a-z-]+=|PBS -[a-zA-Z] )[A-Za-z0-9_.:=@/+,%\-]*")


def make_spawner(spawner_class):
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api/", base_url="/hub/")
    choices = {"partitions": ["debug", "long"]} if spawner_class is CylcSlurmSpawner else {"queues": ["workq"]}
    spawner = spawner_class(user=user, hub=hub, max_memory_mb=4000, **choices)
    spawner.api_token = "token-that-must-stay-secret"
    return spawner


def check_script(spawner, script):
    lines = script.splitlines()
    directives = [line for line in lines if line.startswith(("#SBATCH", "#PBS"))]
    for line in directives:
        assert DIRECTIVE_LINE.fullmatch(line), line

    exec_lines = [line for line in lines if line.startswith("exec ")]
    assert len(exec_lines) == 1
    assert shlex.split(exec_lines[0])[1:] == spawner.job_command()

    exports = [line for line in lines if line.startswith("export ")]
    for line in exports:
        name, _, value = line[len("export "):].partition("=")
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), line
        assert len(shlex.split(value)) <= 1, line
    assert spawner.api_token not in script

    baseline = {"#!/bin/bash", "set -eu", 'rm -f -- "$token_file"', "export JUPYTERHUB_API_TOKEN"}
    free_lines = [
        line
        for line in lines
        if not line.startswith(("#SBATCH", "#PBS", "exec ", "export ", "#", "token_file=", "JUPYTERHUB_API_TOKEN=", "cd -- "))
        and line not in baseline
        and line.strip()
    ]
    assert free_lines == []


@pytest.mark.parametrize("spawner_class", [CylcSlurmSpawner, CylcPBSSpawner])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rest_options_cannot_inject(spawner_class, data):
    spawner = make_spawner(spawner_class)
    names = [field.name for field in spawner.form_fields] + ["partition\n#SBATCH", "cmd"]
    raw = data.draw(st.dictionaries(st.sampled_from(names), values, max_size=4))

    try:
        asyncio.run(spawner.apply_form_options(raw))
    except web.HTTPError as error:
        assert error.status_code == 400
        return

    spawner.apply_workflow()
    check_script(spawner, spawner.render_script())


@pytest.mark.parametrize("spawner_class", [CylcSlurmSpawner, CylcPBSSpawner])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_form_fields_cannot_inject(spawner_class, data):
    spawner = make_spawner(spawner_class)
    names = [field.name for field in spawner.form_fields]
    text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20))
    form = data.draw(st.dictionaries(st.sampled_from(names), st.lists(text, min_size=1, max_size=2)))

    try:
        options = asyncio.run(spawner.validate_form_data(form))
        asyncio.run(spawner.apply_form_options(options))
    except web.HTTPError as error:
        assert error.status_code == 400
        return

    spawner.apply_workflow()
    check_script(spawner, spawner.render_script())


class RecordingTransport:
    """Records every command and returns a canned result for each program."""

    def __init__(self, answers):
        self.answers = answers
        self.commands = []

    async def run(self, argv, *, input=None, timeout=60.0):
        self.commands.append((list(argv), input))
        return self.answers.get(argv[0], CommandResult(0, "", ""))

    async def close(self):
        pass


def test_commands_carry_no_option_values():
    spawner = make_spawner(CylcSlurmSpawner)
    transport = RecordingTransport({"sbatch": CommandResult(0, "77\n", "")})
    spawner.transport_factory = lambda host, user: transport
    asyncio.run(spawner.apply_form_options({"partition": "long", "walltime": 90, "workflow": "suite/run1"}))
    script = spawner.render_script()

    async def flow():
        await spawner.write_token_file()
        spawner.job_id = await spawner.submit(script)
        await spawner.output_tail()
        await spawner.stop()

    asyncio.run(flow())

    programs = [argv for argv, _ in transport.commands]
    assert programs == [
        ["sh", "-c", 'umask 077 && mkdir -p -- "$1" && cat > "$1/$2"', "sh", ".cylc/hub/jobs", "cylc-hub-alice.token"],
        ["sbatch", "--parsable"],
        ["tail", "-n", "20", "--", ".cylc/hub/jobs/cylc-hub-alice.out"],
        ["scancel", "77"],
        ["rm", "-f", "--", ".cylc/hub/jobs/cylc-hub-alice.token"],
    ]
    inputs = [data for _, data in transport.commands]
    assert inputs[0] == spawner.api_token
    assert inputs[1] == script
    assert "#SBATCH --partition=long" in script
    assert "#SBATCH --time=90" in script
    assert spawner.job_id == ""


def test_render_rejects_line_break_in_directive():
    with pytest.raises(ScriptValueError, match="line break"):
        render_job_script(
            "slurm.sh.j2",
            {
                "job_name": "a\n#SBATCH --uid=0",
                "output_path": "o",
                "walltime_minutes": 1,
                "partition": "",
                "memory_mb": 0,
                "cluster": "",
                "environment": [],
                "token_file": "t",
                "working_directory": "",
                "command": ["true"],
            },
        )


def test_render_rejects_shell_text_in_directive():
    with pytest.raises(ScriptValueError, match="scheduler directive"):
        render_job_script(
            "pbs.sh.j2",
            {
                "job_name": "x",
                "output_path": "o",
                "walltime_hms": "01:00:00",
                "queue": "workq -u root",
                "memory_mb": 0,
                "environment": [],
                "token_file": "t",
                "working_directory": "",
                "command": ["true"],
            },
        )


def test_template_printing_bare_value_rejected(tmp_path):
    template = tmp_path / "site.sh.j2"
    template.write_text("#!/bin/bash\n#SBATCH --partition={{ partition }}\n")

    with pytest.raises(ScriptValueError, match="without"):
        render_job_script(str(template), {"partition": "debug"})


def test_environment_name_checked():
    with pytest.raises(ScriptValueError, match="environment variable name"):
        render_job_script(
            "slurm.sh.j2",
            {
                "job_name": "x",
                "output_path": "o",
                "walltime_minutes": 1,
                "partition": "",
                "memory_mb": 0,
                "cluster": "",
                "environment": [("A=1; id #", "v")],
                "token_file": "t",
                "working_directory": "",
                "command": ["true"],
            },
        )
