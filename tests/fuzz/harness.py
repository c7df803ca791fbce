"""The request driver of the no-500 harness: every URL pattern of the site, each parameter filled
with a valid value for the person asking or with a hostile one; the query and form keys each
view reads (recorded while it runs) filled with hostile values; every request inside a savepoint
that is rolled back (a hostile POST that deletes something leaves the world as it was) and under
a time limit. A 5xx, an exception, a hang or an unescaped marker is a failure, reported with the
request that caused it."""

from __future__ import annotations

import re
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import QueryDict
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter
from django.utils.datastructures import MultiValueDict

from tests.fuzz import hostile
from tests.fuzz.world import World


class Hung(Exception):
    """A request ran past the harness's time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hung in this thread after ``seconds``: a timer thread sends it SIGUSR1, which
    interrupts a blocking call too (SIGALRM is left to pytest-timeout)."""

    def expired(signum: int, frame: Any) -> None:
        raise Hung(f"no answer in {seconds:g} s")

    previous = signal.signal(signal.SIGUSR1, expired)
    timer = threading.Timer(seconds, signal.pthread_kill, (threading.get_ident(), signal.SIGUSR1))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


@contextmanager
def recording_keys() -> Iterator[set[str]]:
    """The keys any QueryDict (request.GET, request.POST) is asked for while the block runs:
    what a view reads is what the harness fills with hostile values."""
    keys: set[str] = set()
    originals = {
        name: getattr(MultiValueDict, name)
        for name in ("__getitem__", "get", "getlist", "__contains__")
    }

    def wrap(name: str) -> Any:
        original = originals[name]

        def recorded(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(self, QueryDict) and isinstance(key, str):
                keys.add(key)
            return original(self, key, *args, **kwargs)

        return recorded

    for name in originals:
        setattr(MultiValueDict, name, wrap(name))
    try:
        yield keys
    finally:
        for name, original in originals.items():
            setattr(MultiValueDict, name, original)


@dataclass
class Route:
    name: str
    template: str  # "courses/{course_id}/..." with each parameter as {name}
    params: dict[str, bool]  # name -> whether it is an <int:...> segment

    def path(self, values: dict[str, str]) -> str:
        return "/" + self.template.format(**values)


_ROUTE_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")


def routes(patterns: list[Any] | None = None) -> list[Route]:
    """Every URL pattern of the site, resolved from the URLconf (nothing listed by hand), or
    of ``patterns`` (the websocket routes)."""
    out: list[Route] = []

    def walk(patterns: list[Any], prefix: str, namespace: str, converters: dict[str, Any]) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(
                    p.url_patterns,
                    prefix + str(p.pattern),
                    ns,
                    {**converters, **p.pattern.converters},
                )
            elif isinstance(p, URLPattern):
                out.append(_route(p, prefix, namespace, {**converters, **p.pattern.converters}))

    walk(get_resolver().url_patterns if patterns is None else patterns, "", "", {})
    return out


def _route(p: URLPattern, prefix: str, namespace: str, converters: dict[str, Any]) -> Route:
    """A pattern as a template: ``<int:pk>`` and ``(?P<pk>...)`` become ``{pk}``."""
    template = (prefix + str(p.pattern)).replace("^", "").replace("$", "")
    params: dict[str, bool] = {}
    for match in _ROUTE_PARAM.finditer(template):
        params[match.group(2)] = isinstance(converters.get(match.group(2)), IntConverter)
    for match in _REGEX_GROUP.finditer(template):
        params[match.group(1)] = False
    template = _ROUTE_PARAM.sub(r"{\2}", template)
    template = _REGEX_GROUP.sub(r"{\1}", template)
    return Route(f"{namespace}{p.name or p.lookup_str}", template, params)


def valid_values(world: World, role: str, route: Route, param: str) -> list[str]:
    """Values of a parameter that name something that exists, as this person would ask for it
    (their own run, their course's item...): the harness reaches past the 404s."""
    ns = route.name.split(":")[0] if ":" in route.name else ""
    owner = role if role in world.runs else "user"
    table: dict[str, list[Any]] = {
        "course_id": [world.course.pk],
        "assignment_id": [world.assignment.pk],
        "item_id": [item.pk for item in world.items.values()],
        "submission_id": [world.submission.pk],
        "member_id": [world.memberships["student"].pk],
        "link_id": [world.share.pk],
        "index": [world.example.index],
        "run_id": [world.runs[owner].pk],
        "uidb64": [world.reset[0]],
        "id": [world.users["user"].pk],
        "user_id": [world.extra["target"].pk],
        "object_id": [world.users["user"].pk],
        "content_type_id": [ContentType.objects.get_for_model(type(world.users["user"])).pk],
        "evaluation_id": [world.evaluations.get(role, world.evaluations["public"]).pk],
        "app_label": ["auth"],
        "url": ["nothing-here/"],
    }
    if param == "invitation_id":
        if route.name == "classroom:invitation_answer":
            return [str(world.invitation.pk)]
        return [str(world.extra["mailed"].pk)]
    if param == "token":
        if ns == "sharing":
            return [world.share.token]
        if ns == "classroom":
            return [world.invitation_token]
        return [world.reset[1]]
    if param == "name":
        return [world.puzzle.name if "puzzle" in route.name else world.task.name]
    if param == "pk":
        if ns == "moderation":
            return [str(world.extra["reported"].pk), str(world.program.pk)]
        if ns == "benchmarks":
            return [str(world.evaluations.get(role, world.evaluations["public"]).pk)]
        if ns in ("runs", "sharing"):
            return [str(world.runs[owner].pk)]
        return [str(world.programs[owner].pk), str(world.program.pk)]
    return [str(v) for v in table[param]]


def _describe(exc: BaseException) -> str:
    """The exception and the deepest line of the project's own code it passed through (where a
    fix goes), or the deepest line at all."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/playground/" in f.filename and "site-packages" not in f.filename]
    where = (ours or frames)[-1]
    message = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__} at {where.filename.split('/work/')[-1]}:{where.lineno}: {message}"


def query_seeds(world: World, route: Route) -> list[dict[str, str]]:
    """Valid queries a page is also asked with, so that the harness reaches what only they
    show (the library's tabs, a search, a filter); each key is then made hostile in turn."""
    tabs = [{"dataset": t} for t in ("cruxeval", "humaneval", "p3", "bbh", "user")]
    seeds: dict[str, list[dict[str, str]]] = {
        "programs:library": [*tabs, {"dataset": "bbh", "q": "True"}, {"dataset": "p3", "q": "o"}],
        "programs:task": [{"q": "True", "page": "1"}],
        "classroom:library_search": [
            {"mode": mode, "q": "f", "library": library}
            for mode in ("output", "puzzle") for library in ("all", "mine")
        ],
        "classroom:submissions": [
            {"item": str(world.items["output"].pk), "student": str(world.users["student"].pk)}
        ],
        "benchmarks:compare": [
            {"a": str(world.evaluations["public"].pk), "b": str(world.evaluations["admin"].pk)}
        ],
        "classroom:item": [{"submission": str(world.submission.pk)}],
    }  # fmt: skip
    return seeds.get(route.name, [])


@dataclass
class Failure:
    role: str
    method: str
    url: str
    what: str

    def __str__(self) -> str:
        url = self.url if len(self.url) < 200 else self.url[:200] + "…"
        return f"{self.method} {url} as {self.role}: {self.what}"


@dataclass
class Harness:
    world: World
    limit_s: float
    failures: list[Failure] = field(default_factory=list)
    requests: int = 0
    slowest: tuple[float, str] = (0.0, "")

    def send(
        self,
        role: str,
        method: str,
        url: str,
        body: str | bytes | dict[str, Any] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        **extra: Any,
    ) -> Any:
        """One request as ``role``; the response, or None after a failure (recorded)."""
        client = self.world.client(role)
        cookies = SimpleCookie()
        cookies.load(client.cookies.output(header="", sep=";"))
        self.requests += 1
        t0 = time.monotonic()
        response = None
        try:
            with transaction.atomic():
                with time_limit(self.limit_s):
                    if method == "get":
                        response = client.get(url, **extra)
                    elif isinstance(body, dict):  # multipart, with files
                        response = client.post(url, body, **extra)
                    else:
                        response = client.generic(
                            method.upper(), url, body or "", content_type=content_type, **extra
                        )
                transaction.set_rollback(True)
        except Hung as exc:
            self.failures.append(Failure(role, method.upper(), url, f"hang: {exc}"))
        except Exception as exc:
            self.failures.append(Failure(role, method.upper(), url, _describe(exc)))
        finally:
            client.cookies = cookies  # a logout or a new session must not change who asks next
        elapsed = time.monotonic() - t0
        if elapsed > self.slowest[0]:
            self.slowest = (elapsed, f"{method.upper()} {url[:120]} as {role}")
        if response is None:
            return None
        if response.status_code >= 500:
            self.failures.append(Failure(role, method.upper(), url, f"HTTP {response.status_code}"))
        elif (
            not response.streaming
            and "html" in response.get("Content-Type", "")
            and hostile.MARKER.encode() in response.content
        ):
            self.failures.append(Failure(role, method.upper(), url, "unescaped markup"))
        return response

    def report(self) -> str:
        """Each distinct failure once (the same error at the same place), with one request
        that causes it and how many did."""
        groups: dict[str, list[Failure]] = {}
        for failure in self.failures:
            groups.setdefault(failure.what.split(": ")[0], []).append(failure)
        lines = [f"{len(self.failures)} of {self.requests} requests failed, {len(groups)} ways:"]
        for failures in groups.values():
            lines.append(f"  {failures[0]}  [x{len(failures)}]")
        return "\n".join(lines)


@dataclass
class Form:
    """A form as a page shows it: where it goes, and its fields with what they hold."""

    page: str
    action: str
    method: str
    multipart: bool
    htmx_target: str | None
    fields: list[tuple[str, str]] = field(default_factory=list)  # (name, default), in order
    files: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        """The same form (its fields) sent to the same place."""
        return (self.method, self.action.split("?")[0], tuple(sorted({n for n, _ in self.fields})))

    @property
    def kind(self) -> tuple[str, str, tuple[str, ...]]:
        """The same form sent to the same URL pattern (an item's edit form, whichever item)."""
        try:
            pattern = resolve(urlsplit(self.action).path).route
        except Resolver404:
            pattern = self.action
        return (self.method, pattern, tuple(sorted({n for n, _ in self.fields})))


class FormParser(HTMLParser):
    """The forms of an HTML page, with each field's default (what a browser would send)."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []
        self._button_taken = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            target = a.get("hx-post") or a.get("action") or self.page
            self._form = Form(
                page=self.page,
                action=urljoin(self.page, target),
                method=(("post" if a.get("hx-post") else a.get("method")) or "get").lower(),
                multipart="multipart" in (a.get("enctype", "") + a.get("hx-encoding", "")),
                htmx_target=(a.get("hx-target") or "").lstrip("#") or None
                if a.get("hx-post") or a.get("hx-get")
                else None,
            )
            self._button_taken = False
            return
        form = self._form
        if tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self._selected = value
            return
        if form is None or not a.get("name"):
            return
        name = a["name"]
        kind = a.get("type", "text" if tag == "input" else "submit").lower()
        if tag == "input":
            if kind == "file":
                form.files.append(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            elif kind in ("submit", "image", "reset", "button"):
                if kind == "submit" and not self._button_taken:
                    form.fields.append((name, a.get("value", "")))
                    self._button_taken = True
            else:
                form.fields.append((name, a.get("value", "")))
        elif tag == "button" and kind == "submit" and not self._button_taken:
            form.fields.append((name, a.get("value", "")))
            self._button_taken = True
        elif tag == "select":
            self._select, self._first_option, self._selected = name, None, None
        elif tag == "textarea":
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "select" and self._select is not None:
            chosen = self._selected if self._selected is not None else self._first_option
            self._form.fields.append((self._select, chosen or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._form.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None
        elif tag == "form":
            self.forms.append(self._form)
            self._form = None


def forms_in(page: str, html: str) -> list[Form]:
    parser = FormParser(page)
    parser.feed(html)
    return parser.forms
