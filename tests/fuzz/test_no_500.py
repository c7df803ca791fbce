"""No 500, anywhere: every URL pattern of the site (read from the URLconf) and every form its
pages show, as every kind of visitor, with each path parameter, each query key and each form
field the view reads filled with hostile values (tests/fuzz/hostile.py). `make test` sends the
short tables; `make test-full` (``--full``) the long ones to every role. Each failure names the
request that caused it; all of them are listed at once, grouped by where they break."""

from __future__ import annotations

import itertools
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from tests.fuzz import hostile
from tests.fuzz.harness import (
    Form,
    Harness,
    Route,
    forms_in,
    query_seeds,
    recording_keys,
    routes,
    valid_values,
)
from tests.fuzz.world import World, build

# The slowest page here answers in well under a second; ten times that is a hang.
LIMIT_S = 10.0


@pytest.fixture
def world(db: None, settings: Settings) -> World:
    settings.PLAYGROUND_LIMITS = ratelimits.table("load-test")
    return build()


def roles_for(route: Route) -> tuple[str, ...]:
    """Who asks: anonymous visitors everywhere; the classroom's pages as each role in the
    course and as a stranger; the admin site as its admin; everything else as a stranger and
    as a student (the hiding policy changes what a student's pages do)."""
    if route.name.startswith("admin:"):
        return ("anon", "admin")
    if route.name.startswith("moderation:"):
        return ("anon", "user", "admin")
    if "course_id" in route.params or route.name.startswith("classroom:"):
        return ("anon", "user", "student", "assistant", "instructor")
    return ("anon", "user", "student")


def deepest_role(route: Route) -> str:
    """The one who gets furthest into the view (past the 404s and 403s)."""
    if route.name.startswith(("admin:", "moderation:")):
        return "admin"
    if "course_id" in route.params or route.name.startswith("classroom:"):
        return "instructor"
    return "user"


def _query(keys: set[str], value: str) -> str:
    return "&".join(f"{quote(k, safe='')}={value}" for k in sorted(keys))


def _fill(world: World, role: str, route: Route) -> list[dict[str, str]]:
    names = list(route.params)
    choices = [valid_values(world, role, route, name) for name in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


# About 30 s each in the short form (2,600 and 1,700 requests); the long form takes minutes.
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_url_pattern_survives_hostile_paths_queries_and_bodies(
    world: World, full: bool
) -> None:
    """Each URL pattern, with valid parameters, as each role: the query keys and form keys the
    view reads (recorded while it answers) all set to each hostile value; then each path
    parameter set to each hostile value."""
    harness = Harness(world, LIMIT_S)
    values = hostile.table(full)
    t0 = time.monotonic()
    all_routes = routes()
    for route in all_routes:
        deepest = deepest_role(route)
        admin = route.name.startswith("admin:")
        # Django's own admin is walked lightly in the short form: it is Django's code.
        route_values = values if full or not admin else hostile.FIELD_SHORT
        for role in roles_for(route):
            fills = _fill(world, role, route)
            # Every item (one per mode) for the roles that see items differently.
            for n, params in enumerate(fills if role in ("student", "instructor") else fills[:1]):
                path = route.path(params)
                with recording_keys() as get_keys:
                    harness.send(role, "get", path)
                with recording_keys() as post_keys:
                    harness.send(role, "post", path, "")
                # The short form: hostile queries as a visitor and as the one who gets
                # furthest, hostile bodies as the latter, for the first item only (the forms
                # test sends every item's form its own).
                if not full and (role not in ("anon", deepest) or n > 0):
                    continue
                for value in route_values.values():
                    if get_keys:
                        harness.send(role, "get", f"{path}?{_query(get_keys, value)}")
                    if post_keys and (full or role == deepest):
                        harness.send(role, "post", path, _query(post_keys, value))
        base = _fill(world, deepest, route)[0]
        # Valid queries that reach more of the page, each key in turn made hostile.
        path = route.path(base)
        for seed in query_seeds(world, route):
            harness.send(deepest, "get", f"{path}?{urlencode(seed)}")
            for key in seed:
                for value in (values if full else hostile.FIELD_SHORT).values():
                    query = {k: quote(v, safe="") for k, v in seed.items()} | {key: value}
                    harness.send(
                        deepest, "get", path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
                    )
        for name, numeric in route.params.items():
            segments = hostile.segments(full, numeric=numeric)
            if admin and not full:
                segments = {k: v for k, v in segments.items() if k in ("nul", "surrogate", "huge")}
            for segment in segments.values():
                path = route.path({**base, name: segment})
                harness.send(deepest, "get", path)
                harness.send(deepest, "post", path, "")
    print(
        f"\nno-500 walk: {len(all_routes)} URL patterns, {harness.requests} requests in "
        f"{time.monotonic() - t0:.1f} s; slowest {harness.slowest[0]:.2f} s: {harness.slowest[1]}"
    )
    assert len(all_routes) > 90, "fewer URL patterns than the site has: is the URLconf whole?"
    assert not harness.failures, harness.report()


def _encode(fields: list[tuple[str, str]], override: dict[str, str] | None = None) -> str:
    """An urlencoded body: the page's defaults (quoted here) or, for the fields in
    ``override``, a value already percent-encoded (hostile bytes travel as they are)."""
    override = override or {}
    return "&".join(
        f"{quote(n, safe='')}={override[n] if n in override else quote(v, safe='')}"
        for n, v in fields
    )


def _collect_forms(harness: Harness, world: World, full: bool) -> list[tuple[str, Form]]:
    """Every form on every page of the site as each person sees it (the pages of the URL walk
    with valid parameters): in the long form once per person and page, in the short form once
    per URL pattern (an item's edit form once, whichever item), as the first person to see it."""
    found: dict[tuple[Any, ...], tuple[str, Form]] = {}
    for route in routes():
        for role in roles_for(route):
            for params in _fill(world, role, route):
                page = route.path(params)
                response = harness.send(role, "get", page)
                if response is None or response.streaming or response.status_code != 200:
                    continue
                if "html" not in response.get("Content-Type", ""):
                    continue
                for form in forms_in(page, response.content.decode()):
                    if urlsplit(form.action).path.startswith("/admin/") and role != "admin":
                        continue
                    found.setdefault((role, *form.key) if full else form.kind, (role, form))
    return list(found.values())


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_every_form_survives_hostile_fields_and_files(world: World, full: bool) -> None:
    """Each form: every field set to each hostile value at once (plainly, and as htmx sends it
    where the form is an htmx one); each field alone set to hostile values with the others as
    the page filled them (to get past the first check); each file field given hostile files."""
    harness = Harness(world, LIMIT_S)
    forms = _collect_forms(harness, world, full)
    every = hostile.table(full)
    one_by_one = hostile.table(full) if full else hostile.FIELD_SHORT
    t0 = time.monotonic()
    for role, form in forms:
        names = list(dict.fromkeys(n for n, _ in form.fields if n != "csrfmiddlewaretoken"))
        htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": form.htmx_target or ""}

        def send(body: str, role: str = role, form: Form = form, **extra: Any) -> None:
            if form.method == "get":
                harness.send(role, "get", f"{form.action.split('?')[0]}?{body}", **extra)
            else:
                harness.send(role, "post", form.action, body, **extra)

        admin = urlsplit(form.action).path.startswith("/admin/")
        send(_encode(form.fields))
        # Django's own admin forms are heavy (a permission list of hundreds) and Django's
        # code: the short form sends them the small table, all fields at once.
        for label, value in (every if full or not admin else one_by_one).items():
            send(_encode(form.fields, dict.fromkeys(names, value)))
            if form.htmx_target and (full or label in one_by_one):
                send(_encode(form.fields, dict.fromkeys(names, value)), **htmx)
        if full or not admin:
            for name in names:
                for value in one_by_one.values():
                    send(_encode(form.fields, {name: value}))
        for file_field in form.files:
            for content in hostile.FILES.values():
                data: dict[str, Any] = dict(form.fields)
                data[file_field] = SimpleUploadedFile("upload.py", content)
                harness.send(role, "post", form.action, data)
    print(
        f"\nno-500 forms: {len(forms)} forms, {harness.requests} requests in "
        f"{time.monotonic() - t0:.1f} s; slowest {harness.slowest[0]:.2f} s: {harness.slowest[1]}"
    )
    assert len(forms) > 40, "fewer forms than the site has: is the world whole?"
    assert not harness.failures, harness.report()
