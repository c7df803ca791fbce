"""Pools: items of one assignment that share a pool label are one slot, and each student draws
one of them. The draw is a digest of the assignment, the label and the student over the pool's
items in order (seeded, stable); once a student has answered one of a pool's items, that item
stays their draw even if the staff add or remove items of the pool later. A student sees and
answers only their draw; the gradebook counts it (and no other item of the pool) for them, and
an item's statistics count only the students who drew it. Reads only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from playground.classroom.models import Assignment, Item, Submission


def index_for(assignment_id: int, label: str, student_id: int, count: int) -> int:
    text = f"pool:{assignment_id}:{label}:{student_id}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return int(digest[:16], 16) % count


def by_pool(items: Iterable[Item]) -> dict[str, list[Item]]:
    """The pools of these items (label -> its items in position order)."""
    pools: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda i: (i.position, i.pk)):
        if item.pool:
            pools.setdefault(item.pool, []).append(item)
    return pools


def draws(
    assignment_id: int, items: Iterable[Item], student_id: int, answered: Iterable[int] = ()
) -> dict[str, Item]:
    """The item each pool gives this student (``answered``: ids of the items they answered,
    in the order they first answered them)."""
    done = list(answered)
    drawn: dict[str, Item] = {}
    for label, members in by_pool(items).items():
        ids = {m.pk: m for m in members}
        first = next((pk for pk in done if pk in ids), None)
        if first is not None:
            drawn[label] = ids[first]
        else:
            drawn[label] = members[index_for(assignment_id, label, student_id, len(members))]
    return drawn


def answered_ids(assignment: Assignment, student_id: int) -> list[int]:
    """The items of the assignment this student answered, first answered first."""
    seen: list[int] = []
    rows = (
        Submission.objects.filter(item__assignment=assignment, student_id=student_id)
        .order_by("submitted_at", "id")
        .values_list("item_id", flat=True)
    )
    for pk in rows:
        if pk not in seen:
            seen.append(pk)
    return seen


def items_for(assignment: Assignment, student: Any, items: list[Item] | None = None) -> list[Item]:
    """The assignment's items this student gets, in order: every item outside a pool and their
    draw of each pool."""
    items = list(assignment.items.order_by("position", "id")) if items is None else items
    if not any(i.pool for i in items):
        return items
    drawn = draws(assignment.pk, items, student.pk, answered_ids(assignment, student.pk))
    chosen = {i.pk for i in drawn.values()}
    return [i for i in items if not i.pool or i.pk in chosen]


def gets(item: Item, student: Any) -> bool:
    """Whether this student gets this item (always, unless it is in a pool they drew another
    item of)."""
    if not item.pool:
        return True
    members = list(item.assignment.items.filter(pool=item.pool))
    answered = answered_ids(item.assignment, student.pk)
    return draws(item.assignment_id, members, student.pk, answered)[item.pool].pk == item.pk


def drew(item: Item, student_ids: Iterable[int]) -> set[int]:
    """Which of these students drew this item (all of them, outside a pool)."""
    ids = list(student_ids)
    if not item.pool:
        return set(ids)
    members = list(item.assignment.items.filter(pool=item.pool))
    answered: dict[int, list[int]] = {}
    rows = (
        Submission.objects.filter(item__in=members, student_id__in=ids)
        .order_by("submitted_at", "id")
        .values_list("student_id", "item_id")
    )
    for student_id, item_id in rows:
        seen = answered.setdefault(student_id, [])
        if item_id not in seen:
            seen.append(item_id)
    return {
        sid
        for sid in ids
        if draws(item.assignment_id, members, sid, answered.get(sid, []))[item.pool].pk == item.pk
    }
