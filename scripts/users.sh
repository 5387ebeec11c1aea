#!/usr/bin/env bash
# Create OS accounts for the demo or the tests, as root: users.sh PASSWORD USER...
#
# Each user gets a home directory and the given password (for PAM logins on
# the hub's login page); carol joins the group ops, which the demo policy
# also declares. Existing accounts keep their homes and get the password.
set -euo pipefail

password=$1
shift
getent group ops >/dev/null || groupadd ops
for user in "$@"; do
    id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
    printf '%s:%s\n' "$user" "$password" | chpasswd
done
if id -u carol >/dev/null 2>&1; then
    usermod --append --groups ops carol
fi
