#!/usr/bin/env bash
# Create OS accounts for the demo or the tests, as root:
#   printf '%s\n' "$password" | users.sh USER...
#
# The password comes on standard input so that it never shows in a process list.
# Each user gets a home directory and the given password (for PAM logins on
# the hub's login page); carol joins the group ops, which the demo policy
# also declares. Existing accounts keep their homes and get the password.
set -euo pipefail

IFS= read -r password || true
if [ -z "$password" ]; then
    echo "users.sh: missing password on standard input" >&2
    exit 2
fi
getent group ops >/dev/null || groupadd ops
for user in "$@"; do
    id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
    printf '%s:%s\n' "$user" "$password" | chpasswd
done
if id -u carol >/dev/null 2>&1; then
    usermod --append --groups ops carol
fi
