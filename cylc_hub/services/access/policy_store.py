"""The policy in force: loaded from the site's file, reloaded on change, last good kept."""

import logging
import os
import time

from cylc_hub.policy import PolicyError, PolicyIssue, parse_policy
from cylc_hub.policy.loader import decode_policy, read_policy_file

EMPTY_POLICY_TEXT = "rules = []\n"


class PolicyStore:
    """Hold the site policy and reload it when its file changes.

    A file that fails to parse or validate is rejected with every
    ``FILE:LINE: reason`` in the log, and the last good policy stays in force.
    When no good policy was ever loaded the store holds an empty policy, under
    which nobody may view anybody else's server (fail closed).

    A file written in place can be read before the writer has finished. So
    a changed file is loaded only once its mtime is at least ``settle``
    seconds old, and an empty file is rejected, because opening a file for
    writing empties it first. A file left cut short at a line boundary can
    still be valid TOML, so sites should replace the file with a rename,
    which readers see whole.
    """

    def __init__(self, path, *, settle=0.0, clock=time.time, log=None):
        self.path = os.fspath(path)
        self.settle = settle
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self.policy = parse_policy(EMPTY_POLICY_TEXT, source="<empty policy>")
        self.loaded = False
        self._signature = None

    def reload_if_changed(self, *, settle=True):
        """Load the file when its mtime or size changed; return True when a new policy took effect.

        With ``settle`` false a changed file is loaded however recent its mtime,
        as at start, when no policy is in force yet.
        """
        try:
            stat = os.stat(self.path)
        except OSError as error:
            if self._signature != "missing":
                self.log.error(
                    "Policy file %s cannot be read (%s); keeping the policy in force",
                    self.path,
                    error.strerror,
                )
                self._signature = "missing"
            return False

        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature == self._signature:
            return False
        # A file modified in the future (clock skew) counts as settled.
        age = self.clock() - stat.st_mtime
        if settle and 0 <= age < self.settle:
            return False
        self._signature = signature
        return self._load()

    def _load(self):
        try:
            raw = read_policy_file(self.path)
            if not raw.strip():
                raise PolicyError([
                    PolicyIssue(
                        self.path,
                        1,
                        "the policy file is empty, as a file being written is. "
                        "Write 'rules = []' for a policy under which nobody views others.",
                    )
                ])
            policy = decode_policy(raw, self.path)
        except PolicyError as error:
            kept = "the last good policy" if self.loaded else "an empty policy (nobody views others)"
            self.log.error(
                "Policy file %s rejected, keeping %s:\n%s", self.path, kept, error
            )
            return False

        self.policy = policy
        self.loaded = True
        self.log.info(
            "Policy file %s loaded: %d rules, %d groups",
            self.path,
            len(policy.rules),
            len(policy.groups),
        )
        return True

