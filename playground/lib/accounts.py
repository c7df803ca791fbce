"""Unprivileged system accounts that the services drop to when started as root."""

from __future__ import annotations

import pwd
import shutil
import subprocess


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """The account ``name``, created (system account, no home, no login shell) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(  # noqa: S603 - fixed argv
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)
