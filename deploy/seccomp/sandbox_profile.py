"""The sandbox worker's seccomp profile: the container engine's own default profile, plus the
system calls bubblewrap makes to build a sandbox without CAP_SYS_ADMIN, and nothing else.

    python3 deploy/seccomp/sandbox_profile.py ENGINE_DEFAULT.json > deploy/seccomp/sandbox.json

ENGINE_DEFAULT.json is the default profile of the engine that will run the container, at its
version: Podman's /usr/share/containers/seccomp.json (CRI-O's nodes too), Docker's
profiles/seccomp/default.json of moby at the engine's version (Debian's
golang-github-docker-docker-dev ships it; containerd's default is built from the same). The
output is generated, not committed: it follows the engine it was made from.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

# What bubblewrap 0.8 (Debian 12's) calls to set up playground/sandbox/jail.py's sandbox, read in
# its bubblewrap.c and checked with strace: one clone() with CLONE_NEWUSER, NEWPID, NEWNET,
# NEWNS, NEWIPC, NEWUTS and NEWCGROUP; unshare(CLONE_NEWUSER) for --disable-userns; mount() for
# the binds, tmpfs, devpts and read-only remounts; pivot_root() and umount2() to leave the old
# root behind; sethostname() for --hostname, in its own UTS namespace. Engines allow these only
# to a process with CAP_SYS_ADMIN (Docker also filters clone's namespace flags) and the sandbox
# worker keeps no capability. Not setns, chroot, clone3 or the new mount API: bubblewrap does
# not use them here, so the engine's rule for them stays.
BUBBLEWRAP_SYSCALLS = ("clone", "mount", "pivot_root", "sethostname", "umount2", "unshare")

COMMENT = "bubblewrap without CAP_SYS_ADMIN (deploy/seccomp/sandbox_profile.py)"


def _names(rule: dict[str, Any]) -> list[str]:
    # The old format named one system call a rule ("name"); the current one lists them.
    if "names" in rule:
        return list(rule["names"])
    return [rule["name"]] if "name" in rule else []


def sandbox_profile(default: dict[str, Any]) -> dict[str, Any]:
    """``default`` with BUBBLEWRAP_SYSCALLS allowed whatever the capabilities and arguments.

    Every other rule that names one of them (allowed only with CAP_SYS_ADMIN, refused without it,
    clone allowed only without namespace flags) loses that name, so that no conditional rule is
    left to contradict the new one; a rule left with no name goes. Everything else is kept as
    the engine wrote it."""
    if "syscalls" not in default or "defaultAction" not in default:
        raise ValueError("not a container engine's seccomp profile (no defaultAction, syscalls)")
    profile = copy.deepcopy(default)
    needed = set(BUBBLEWRAP_SYSCALLS)
    rules = []
    for rule in profile["syscalls"]:
        names = _names(rule)
        kept = [name for name in names if name not in needed]
        if kept == names:
            rules.append(rule)
            continue
        if not kept:
            continue
        rule.pop("name", None)
        rule["names"] = kept
        rules.append(rule)
    rules.append(
        {
            "names": list(BUBBLEWRAP_SYSCALLS),
            "action": "SCMP_ACT_ALLOW",
            "args": [],
            "comment": COMMENT,
            "includes": {},
            "excludes": {},
        }
    )
    profile["syscalls"] = rules
    return profile


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} ENGINE_DEFAULT.json > sandbox.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        default = json.load(f)
    try:
        profile = sandbox_profile(default)
    except ValueError as exc:
        print(f"{argv[1]}: {exc}", file=sys.stderr)
        return 1
    json.dump(profile, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
