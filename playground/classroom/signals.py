"""Signal receivers of the classroom: at every login (sign-up logs in too), the roster entries
that name this person make them members."""

from __future__ import annotations

from typing import Any

from playground.classroom.services import claim_roster_entries


def claim_roster_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    claim_roster_entries(user)
