"""No page or API answers without the right role, for every route the app has, including ones added later.

The test enumerates ``app.routes``: a route must either be on the explicit public allow-list or declare its
roles with ``require(...)``; then every (route, role) pair is tried, by browser session and by API token,
and each forbidden pair must get 403, anonymous callers 401 (API) or the sign-in page (pages), and each
allowed pair anything but those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import routing
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from controller.api.auth import PUBLIC_PATHS, SESSION_COOKIE
from controller.db import session_scope
from controller.web.accounts import Role, add_user, create_token
from tests.web.conftest import csrf_of
from tests.web.estate import PASSWORD, USERS

# State-changing routes any signed-in role may use; every other one is for network managers only, but for the
# staff's wake button, which is theirs alone.
OPEN_TO_READERS = {("POST", "/signout")}
STAFF_ONLY = {("POST", "/api/v1/staff/wake"), ("POST", "/staff/wake")}
PARAM = re.compile(r"{(\w+)(:\w+)?}")


def app_routes(app) -> list:
    """Every route, with routers included into the app flattened (FastAPI ≥ 0.16x includes them lazily)."""
    flatten = getattr(routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten else list(app.routes)


def declared_roles(route) -> frozenset[Role] | None:
    """The roles of the route's ``require(...)`` dependency, wherever it sits in the dependency tree."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        roles = getattr(dependant.call, "roles", None)
        if roles is not None:
            return roles
        pending.extend(dependant.dependencies)
    return None


def protected_routes(app) -> Iterator[tuple[str, str, frozenset[Role]]]:
    for route in app_routes(app):
        original = getattr(route, "original_route", route)
        if isinstance(original, Mount):
            assert route.path in PUBLIC_PATHS, f"mount {route.path} is neither public nor protected"
            continue
        if route.path in PUBLIC_PATHS:
            continue
        assert isinstance(original, APIRoute), f"{route.path}: an unexpected kind of route ({type(original).__name__})"
        roles = declared_roles(route)
        assert roles, f"{sorted(route.methods)} {route.path} has no require(...) and is not on PUBLIC_PATHS"
        for method in sorted(route.methods - {"HEAD"}):
            yield method, route.path, roles


def concrete(path: str) -> str:
    """A path with its parameters filled by values that name nothing, so allowed calls change nothing."""
    return PARAM.sub(lambda m: "999999" if m.group(1).endswith("id") else "nobody", path)


@pytest.fixture
def callers(client: TestClient, engine) -> dict[tuple[str, Role], dict[str, str]]:
    """Headers that make a request as each role, by session cookie (+ CSRF token) and by API token."""
    found = {}
    for role, name in USERS.items():
        signed_in = client.post("/signin", data={"name": name, "password": PASSWORD})
        secret = signed_in.cookies[SESSION_COOKIE]
        csrf = csrf_of(client.get("/devices").text)
        client.cookies.clear()
        found[("session", role)] = {"Cookie": f"{SESSION_COOKIE}={secret}", "X-CSRF-Token": csrf}
        with session_scope(engine) as session:
            token = create_token(session, f"matrix-{role}", role, [], None, "test")[0]
        found[("token", role)] = {"Authorization": f"Bearer {token}"}
    with session_scope(engine) as session:  # a teacher: the rooms they may wake, nothing else
        add_user(session, "stella", Role.staff, PASSWORD, ["Hillside Primary"], "test", ["R12"])
        token = create_token(session, "matrix-staff", Role.staff, ["Hillside Primary"], None, "test", ["R12"])[0]
    secret = client.post("/signin", data={"name": "stella", "password": PASSWORD}).cookies[SESSION_COOKIE]
    csrf = csrf_of(client.get("/staff").text)
    client.cookies.clear()
    found[("session", Role.staff)] = {"Cookie": f"{SESSION_COOKIE}={secret}", "X-CSRF-Token": csrf}
    found[("token", Role.staff)] = {"Authorization": f"Bearer {token}"}
    return found


def test_every_route_is_public_by_name_or_declares_its_roles(client):
    routes = list(protected_routes(client.app))
    assert len(routes) >= 20  # the console's pages and forms, reports, and whatever else was added


def test_only_network_managers_change_anything(client):
    for method, path, roles in protected_routes(client.app):
        if (method, path) in STAFF_ONLY:
            assert roles == {Role.staff}, f"{method} {path} lets {sorted(roles)} wake staff rooms"
        elif method != "GET" and (method, path) not in OPEN_TO_READERS:
            assert roles == {Role.network_manager}, f"{method} {path} lets {sorted(roles)} change state"


def test_each_role_gets_exactly_the_routes_it_is_allowed(client, callers):
    checked = 0
    # Sign-out ends the session it is called with, so it goes last.
    for method, path, roles in sorted(protected_routes(client.app), key=lambda r: r[:2] in OPEN_TO_READERS):
        url = concrete(path)
        for (kind, role), headers in callers.items():
            form = {"csrf_token": headers.get("X-CSRF-Token", "")}
            response = client.request(method, url, headers=headers, data=form)
            if role in roles:
                assert response.status_code not in (401, 403), (kind, role, method, url, response.text[:300])
                assert not response.headers.get("location", "").startswith("/signin?next="), (kind, role, method, url)
            else:
                assert response.status_code == 403, (kind, role, method, url, response.status_code)
            checked += 1
    assert checked >= 20 * 8


def test_anonymous_callers_are_sent_to_sign_in_or_refused(client):
    for method, path, _ in protected_routes(client.app):
        response = client.request(method, concrete(path))
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
        else:  # a page, or a form whose session has expired: sign in, then back to the page or the start
            assert response.status_code == 303, (method, path, response.status_code)
            back = concrete(path) if method == "GET" else "/"
            assert response.headers["location"] == f"/signin?next={back}"


def test_a_route_added_later_without_require_fails_this_test(client):
    @client.app.get("/forgotten")
    def forgotten() -> dict:
        return {}

    with pytest.raises(AssertionError, match="/forgotten has no require"):
        list(protected_routes(client.app))


def test_the_public_allow_list_names_only_routes_that_exist(client):
    # A stale entry would silently let a future route of that path through unprotected.
    missing = PUBLIC_PATHS - {route.path for route in app_routes(client.app)}
    assert not missing
