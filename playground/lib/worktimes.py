"""Every time limit of queued work, and the recovery timings that must agree with them, in one
place: the Celery tasks take their limits from here, the broker's visibility timeout and the
reaper's schedule too (settings.py), and the relations between them are checked on import.

How a lost piece of work comes back (docs/RELIABILITY.md has the measured figures):

- A task holds a lease (``lib.leases``, in Redis) on the part of the work it does, refreshed
  every ``LEASE_S / 3`` while it runs. A second copy of the task (a broker redelivery, a resend)
  finds the lease held and leaves the work alone, so a part never runs twice at once.
- The reaper (``playground.reaper``, every ``REAP_EVERY_S`` on Celery beat, one at a time
  cluster-wide) sends a part again when its task took it and died (the lease lapsed, at most
  ``LEASE_S`` after the last refresh), or when no task ever took it: for a run's part, as soon
  as its message is in none of the broker's places ``LOST_AFTER_S`` after its sending (lost with
  a Redis primary that failed over, or never sent; lib/broker.py); for other work, within
  ``UNCLAIMED_AFTER_S`` of its sending (its message was lost with a dead worker's
  unacknowledged ones, or with a broker that lost its data). A piece of work is sent again at most
  ``MAX_RESENDS`` times; then it fails with a message that says so (a dead letter, kept).
- A task acknowledged late that a dead worker held comes back from the broker after
  ``VISIBILITY_TIMEOUT_S`` as well; by then the reaper has usually sent it again and finished
  it, and the late copy finds the work done.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class TaskLimits(NamedTuple):
    soft_s: int  # SoftTimeLimitExceeded is raised in the task: it fails its run with a message
    hard_s: int  # the pool process is killed


SANDBOX = TaskLimits(60, 90)  # a real run in the sandbox (a program's own limits are far lower)
EMULATION = TaskLimits(900, 960)  # a method's model calls (a stream is at most 300 s)
GRADING = TaskLimits(60, 90)  # a classroom answer checked in the sandbox
# A run sent to the sandbox queue by another process (runs/sandboxing.py): a Chain of Code run's
# model time (at most 600 s, Limits.lm_seconds) is spent while its sandbox waits.
SANDBOX_JOB = TaskLimits(700, 760)
# One item of an evaluation (evaluation's evaluate_item): its real run on the sandbox queue, the
# model's emulation in this task (as EMULATION), its scoring.
ITEM = TaskLimits(1000, 1080)
# A run's real trace scored under its model (runs/surprise.py: at most 1,000 steps of the call;
# 1,035 took 419 to 540 s in llama.cpp on a busy 2-core CPU, docs/BENCHMARKS.md).
SURPRISE = TaskLimits(900, 960)
# Every result of an evaluation scored again, or an import's checks (one task, holding a lease).
SCORING = TaskLimits(3600, 3700)

# SCORING is longer than the visibility timeout on purpose: such a task holds a lease, so the
# copy Redis hands out again while it still works finds it held (or the work done).
LONGEST_HARD_S = max(
    SANDBOX.hard_s, EMULATION.hard_s, GRADING.hard_s, SANDBOX_JOB.hard_s, ITEM.hard_s,
    SURPRISE.hard_s,
)  # fmt: skip


def _seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


# A task's lease lapses this long after its last refresh (refreshed every third of it); lost
# work comes back within about LEASE_S + REAP_EVERY_S. Shorter is quicker recovery and more
# writes to Redis (one per held lease every LEASE_S / 3); the fault tests shorten both.
LEASE_S = _seconds("PLAYGROUND_LEASE_S", 45)
# The reaper's period, and the lock that keeps two of its passes from overlapping.
REAP_EVERY_S = _seconds("PLAYGROUND_REAP_EVERY_S", 30)
# A task taken by a worker that dies comes back from Redis after this long (acks_late): longer
# than any task's hard limit, or a slow but live task would be handed out a second time.
VISIBILITY_TIMEOUT_S = 1200
# A part sent this long ago that no task has taken is sent again: past the visibility timeout,
# so a message held by a dead worker has had its chance to come back by itself first.
UNCLAIMED_AFTER_S = VISIBILITY_TIMEOUT_S + 300
# A run's part that no task has taken this long after its sending is looked for in the broker
# (lib/broker.py), and sent again at once if its message is in none of its places (lost with a
# Redis primary that failed over, or never sent): two sweeps, so that a message its sender is
# still retrying through a failover mostly lands first (one that lands later is a harmless copy).
LOST_AFTER_S = 2 * REAP_EVERY_S
MAX_RESENDS = 2

if not VISIBILITY_TIMEOUT_S > LONGEST_HARD_S:
    raise ValueError("the visibility timeout must exceed every hard limit, or live tasks rerun")
if not UNCLAIMED_AFTER_S > VISIBILITY_TIMEOUT_S:
    raise ValueError("unclaimed work is sent again only after the broker had its chance")
