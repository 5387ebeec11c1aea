"""The ``cylc-hub`` command: check a policy file and explain its decisions."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from cylc_hub import __version__
from cylc_hub.policy import Policy, PolicyError, load_policy, parse_policy


def build_parser() -> argparse.ArgumentParser:
    """Build the parser for ``cylc-hub`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="cylc-hub",
        description="Tools for the cylc-hub JupyterHub extension.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    policy = commands.add_parser(
        "policy",
        help="check a site policy file or explain one of its decisions",
        description="Check a site policy file or explain one of its decisions.",
    )
    actions = policy.add_subparsers(dest="action", required=True, metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="validate FILE and report every problem as FILE:LINE: reason",
        description=(
            "Validate a policy file. Exits 0 when it is valid, and 1 with "
            "one FILE:LINE: reason line per problem on stderr otherwise."
        ),
    )
    check.add_argument("file", metavar="FILE", help="path of the TOML policy file")
    check.set_defaults(handler=run_check)

    explain = actions.add_parser(
        "explain",
        help="print as JSON what VIEWER may do on OWNER's UI server, and why",
        description=(
            "Print the permissions VIEWER has on OWNER's UI server, the rules "
            "that matched and the reason for each permission, as JSON. Groups "
            "come from the file, and from the host when the file enables OS "
            "groups. JupyterHub groups and owners' grants are not consulted."
        ),
    )
    explain.add_argument("file", metavar="FILE", help="path of the TOML policy file")
    explain.add_argument(
        "owner", metavar="OWNER", type=user_name, help="user who owns the UI server"
    )
    explain.add_argument("viewer", metavar="VIEWER", type=user_name, help="user who opens it")
    explain.set_defaults(handler=run_explain)

    convert = actions.add_parser(
        "convert",
        help="print the TOML policy for a cylc-uiserver site_authorization",
        description=(
            "Run a Jupyter config file (such as jupyter_config.py) that sets "
            "c.CylcUIServer.site_authorization, and print the equivalent TOML "
            "site policy on stdout. Exits 1 with the reason on stderr when the "
            "file fails, sets no site_authorization, or the result is invalid."
        ),
    )
    convert.add_argument("file", metavar="FILE", help="path of the Jupyter config file (Python)")
    convert.set_defaults(handler=run_convert)

    return parser


def user_name(text: str) -> str:
    """Accept a user name for ``explain``; selectors and blank names are not user names."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a user name must not be empty")
    if text.startswith("group:") or any(character in text for character in "*?[]"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is a selector, not a user name: give one user's name"
        )
    return text


def load_or_report(path: str) -> Policy | None:
    """Load the policy at ``path``, or print its problems to stderr and return None."""
    try:
        return load_policy(path)
    except PolicyError as error:
        print(error, file=sys.stderr)
        return None


def run_check(args: argparse.Namespace) -> int:
    """Validate the file and print a one-line summary when it is valid."""
    policy = load_or_report(args.file)
    if policy is None:
        return 1

    os_groups = "on" if policy.os_groups else "off"
    print(
        f"{args.file}: valid, {_count(len(policy.rules), 'rule')}, "
        f"{_count(len(policy.groups), 'group')}, OS groups {os_groups}"
    )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Print the decision for OWNER and VIEWER as indented JSON."""
    policy = load_or_report(args.file)
    if policy is None:
        return 1

    decision = policy.decide(args.owner, args.viewer)
    print(json.dumps(decision.to_json(), indent=2))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    """Print the converted policy after checking that it loads as a valid policy."""
    from cylc_hub.policy.convert import (
        ConversionError,
        convert_site_authorization,
        load_site_authorization,
    )

    try:
        text = convert_site_authorization(load_site_authorization(args.file), source=args.file)
        parse_policy(text, source=f"{args.file} (converted)")
    except ConversionError as error:
        print(error, file=sys.stderr)
        return 1
    except PolicyError as error:
        print(f"The converted policy is invalid:\n{error}", file=sys.stderr)
        return 1

    sys.stdout.write(text)
    return 0


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cylc-hub`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    A usage error returns 2, the status argparse exits with, and ``--help``
    returns 0.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return exit_request.code if isinstance(exit_request.code, int) else 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
