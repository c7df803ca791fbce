"""Locust users for the load harness (bench/load_test.py drives them; they also run on their own
against any site set up by its ``setup`` step: ``locust -f bench/load/locustfile.py --host URL``
with ``LOAD_PLAN`` naming the plan file that step wrote).

``Arrivals`` (the harness) and ``Student`` (by hand): one pass is what a student of a class does
when the teacher says "go": sign in
(the login form: a real password check), open the assignment's item, run a program of their own
(real run and the model's emulation, through the JSON API with the session's CSRF token), wait on
the run's Server-Sent Events for its verdict, then answer the item (the form, graded at once).
Each step is a locust request; "run→verdict" is the time from pressing run to the ``done`` event.

``Viewer``: one viewer of a shared link: opens the share page, then holds the run's websocket
and counts the messages it gets, reconnecting when the server ends it.

Loopback only: the harness refuses any other host (a load test is not pointed at someone
else's site by accident).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from locust import HttpUser, User, constant, constant_pacing, task
from locust.clients import HttpSession
from locust.exception import StopUser

PLAN: dict[str, Any] = {}
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_next_student = itertools.count()
_lock = threading.Lock()
# Set by the harness at the end of a step: no student starts another pass, viewers leave.
STOP = threading.Event()
ARRIVED = threading.Event()  # the open-loop arrivals of a step are over and their passes done
IN_FLIGHT = [0]  # passes under way
# Each flow waits at most this long for its verdict (then counts as failed).
VERDICT_WAIT_S = 120.0


def plan() -> dict[str, Any]:
    """What setup made: students' names and password, the item's address, the shared run."""
    if not PLAN:
        with open(os.environ["LOAD_PLAN"], encoding="utf-8") as f:
            PLAN.update(json.load(f))
    return PLAN


def loopback_only(host: str) -> None:
    name = urlsplit(host).hostname or ""
    if name not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"the load harness runs against loopback only, not {name!r}")


def _fire(user: User, kind: str, name: str, started: float, error: Exception | None) -> None:
    user.environment.events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=error,
        context={},
    )


class Exercise:
    """One student's pass, on a session of its own (cookies: the student's sign-in)."""

    def __init__(self, user: User, client: HttpSession, username: str) -> None:
        self.user, self.client, self.username = user, client, username
        self.host = user.host or ""

    def _csrf(self, path: str, name: str) -> str:
        page = self.client.get(path, name=name)
        found = _CSRF.search(page.text)
        return found.group(1) if found else ""

    def run(self) -> None:
        with _lock:
            IN_FLIGHT[0] += 1
        try:
            self._run()
        finally:
            with _lock:
                IN_FLIGHT[0] -= 1

    def _run(self) -> None:
        p = plan()
        self.client.cookies.clear()
        token = self._csrf("/accounts/login/", "login page")
        signed_in = self.client.post(
            "/accounts/login/",
            data={"username": self.username, "password": p["password"],
                  "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.host}/accounts/login/"},
            name="login", allow_redirects=False, catch_response=True,
        )  # fmt: skip
        with signed_in:
            if signed_in.status_code != 302:
                signed_in.failure(f"not signed in: HTTP {signed_in.status_code}")
                return
        self._csrf(p["item_url"], "item page")
        csrf = self.client.cookies.get("csrftoken", "")
        started = time.perf_counter()
        with self.client.post(
            "/api/runs",
            json={"source": p["program"], "call": p["call"], "method": p["method"],
                  "model": p["model"]},
            headers={"X-CSRFToken": csrf, "Referer": f"{self.host}/"},
            name="run", catch_response=True,
        ) as answer:  # fmt: skip
            if answer.status_code != 201:
                answer.failure(f"HTTP {answer.status_code}: {answer.text[:200]}")
                return
            run_id = answer.json()["id"]
        error = self._verdict(run_id)
        _fire(self.user, "RUN", "run→verdict", started, error)
        self.client.post(
            p["submit_url"],
            data={"answer": p["answer"], "csrfmiddlewaretoken": csrf},
            headers={"Referer": f"{self.host}{p['item_url']}"},
            name="answer", allow_redirects=False,
        )  # fmt: skip

    def _verdict(self, run_id: int) -> Exception | None:
        """Follow the run's events until it ends; None when it ended done."""
        deadline = time.monotonic() + VERDICT_WAIT_S
        after = 0
        problem: Exception = TimeoutError("no verdict in time")
        while time.monotonic() < deadline:
            headers = {"Last-Event-ID": str(after)} if after else {}
            try:
                with self.client.get(
                    f"/runs/{run_id}/events", headers=headers, stream=True,
                    name="events", catch_response=True, timeout=60,
                ) as events:  # fmt: skip
                    events.success()  # its time is the stream's: measured as run→verdict
                    kind = None
                    for raw in events.iter_lines():
                        line = raw.decode() if isinstance(raw, bytes) else raw
                        if line.startswith("id: "):
                            after = int(line[4:])
                        elif line.startswith("event: "):
                            kind = line[7:]
                        elif line == "" and kind in ("done", "failed", "cancelled"):
                            return None if kind == "done" else RuntimeError(f"run {kind}")
            except Exception as exc:  # a dropped stream: reconnect after the last event
                problem = exc
                time.sleep(0.2)
        return problem


def _next_username() -> str:
    with _lock:
        number = next(_next_student)
    students = plan()["students"]
    return str(students[number % len(students)])


class Student(HttpUser):
    """Closed loop (for `locust -f` by hand): a pass every ``LOAD_PACING_S`` seconds per user,
    or back to back when a pass takes longer."""

    wait_time = constant_pacing(float(os.environ.get("LOAD_PACING_S", "10")))

    def on_start(self) -> None:
        loopback_only(self.host or "")
        self.username = _next_username()

    @task
    def a_class_exercise(self) -> None:
        if not STOP.is_set():
            Exercise(self, self.client, self.username).run()


class Arrivals(User):
    """Open loop (the harness): students arrive ``LOAD_RATE`` a second for ``LOAD_STEP_S``
    seconds, evenly spaced, each doing one pass in a session of its own, whether or not the
    ones before have finished: past what the site can take, the queue grows."""

    fixed_count = 1
    wait_time = constant(3600)

    def on_start(self) -> None:
        loopback_only(self.host or "")

    @task
    def arrive(self) -> None:
        import gevent

        rate = float(os.environ["LOAD_RATE"])
        count = round(rate * float(os.environ["LOAD_STEP_S"]))
        started = time.monotonic()
        passes = []
        for i in range(count):
            gevent.sleep(max(0.0, started + i / rate - time.monotonic()))
            if STOP.is_set():
                break
            session = HttpSession(
                base_url=self.host or "", request_event=self.environment.events.request, user=self
            )
            passes.append(gevent.spawn(Exercise(self, session, _next_username()).run))
        gevent.joinall(passes, timeout=VERDICT_WAIT_S + 60)
        ARRIVED.set()


class Viewer(User):
    """A viewer of the shared link, on the run's websocket."""

    wait_time = constant_pacing(1)

    def on_start(self) -> None:
        loopback_only(self.host or "")
        self.messages = 0

    @task
    def watch(self) -> None:
        from websockets.sync.client import connect
        from websockets.typing import Origin

        p = plan()
        host = urlsplit(self.host or "")
        url = f"ws://{host.netloc}/ws/runs/{p['shared_run']}/?share={p['share_token']}"
        started = time.perf_counter()
        try:
            with connect(url, origin=Origin(f"http://{host.netloc}"), open_timeout=30) as socket:
                socket.recv(timeout=30)  # the state, sent on connecting
                _fire(self, "WS", "viewer: connect→state", started, None)
                deadline = time.monotonic() + float(os.environ.get("LOAD_VIEW_S", "30"))
                while time.monotonic() < deadline and not STOP.is_set():
                    try:
                        socket.recv(timeout=1)
                        self.messages += 1
                    except TimeoutError:
                        continue
        except Exception as exc:
            _fire(self, "WS", "viewer: connect→state", started, exc)
            raise StopUser() from exc
