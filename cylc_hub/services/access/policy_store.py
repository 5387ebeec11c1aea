"""The policy in force: loaded from the site's file, reloaded on change, last good kept."""

import logging
import os

from cylc_hub.policy import PolicyError, load_policy, parse_policy

EMPTY_POLICY_TEXT = "rules = []\n"


class PolicyStore:
    """Hold the site policy and reload it when its file changes.

    A file that fails to parse or validate is rejected with every
    ``FILE:LINE: reason`` in the log, and the last good policy stays in force.
    When no good policy was ever loaded the store holds an empty policy, under
    which nobody may view anybody else's server (fail closed).
    """

    def __init__(self, path, *, log=None):
        self.path = os.fspath(path)
        self.log = log or logging.getLogger(__name__)
        self.policy = parse_policy(EMPTY_POLICY_TEXT, source="<empty policy>")
        self.loaded = False
        self._signature = None

    def reload_if_changed(self):
        """Load the file when its mtime or size changed; return True when a new policy took effect."""
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
        self._signature = signature
        return self._load()

    def _load(self):
        try:
            policy = load_policy(self.path)
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
