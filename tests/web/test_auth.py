"""Sign-in, sessions, CSRF and API tokens, through the real app (TestClient runs it in-process)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from controller.api.auth import SESSION_COOKIE
from controller.db import session_scope
from controller.register.models import ChangeRecord
from controller.timeutil import utcnow
from controller.web.accounts import Role, create_token, revoke_token
from controller.web.models import User, WebSession
from tests.web.conftest import sign_in
from tests.web.estate import PASSWORD


def _age_sessions(engine, **ago: timedelta) -> None:
    with session_scope(engine) as session:
        for row in session.exec(select(WebSession)).all():
            for column, delta in ago.items():
                setattr(row, column, utcnow() - delta)
            session.add(row)


def test_a_signed_in_user_sees_the_console_and_signing_out_ends_the_session(client):
    csrf = sign_in(client, "nora")
    assert client.get("/").status_code == 200
    cookie = client.cookies[SESSION_COOKIE]
    assert client.post("/signout", data={"csrf_token": csrf}).status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # replaying the old cookie does not bring the session back
    assert client.get("/").headers["location"] == "/signin?next=/"


def test_the_session_cookie_is_http_only_and_same_site_strict(client):
    response = client.post("/signin", data={"name": "nora", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here, where a Secure cookie would never come back


def test_served_over_https_the_session_cookie_is_secure(client):
    with client.__class__(client.app, base_url="https://testserver", follow_redirects=False) as https:
        response = https.post("/signin", data={"name": "nora", "password": PASSWORD})
    assert "Secure" in response.headers["set-cookie"]


def test_a_session_ends_after_the_idle_limit(client, engine):
    sign_in(client, "nora")
    _age_sessions(engine, last_seen=timedelta(minutes=31))  # default idle limit: 30 minutes
    assert client.get("/").status_code == 303
    with Session(engine) as session:
        assert session.exec(select(WebSession)).all() == []  # an expired session is deleted, not kept


def test_a_session_ends_at_its_absolute_age_however_busy(client, engine):
    sign_in(client, "nora")
    _age_sessions(engine, created_at=timedelta(hours=12, minutes=1))  # used a second ago, but signed in 12 h ago
    assert client.get("/").status_code == 303


def test_a_busy_session_within_both_limits_carries_on(client, engine):
    sign_in(client, "nora")
    _age_sessions(engine, last_seen=timedelta(minutes=29), created_at=timedelta(hours=11))
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("sent", [None, "", "forged-token"])
def test_a_form_post_without_the_sessions_csrf_token_is_refused(client, engine, sent):
    sign_in(client, "nora")
    data = {"name": "mallory", "role": "network_manager", "password": "x" * 16}
    if sent is not None:
        data["csrf_token"] = sent
    response = client.post("/users", data=data)
    assert response.status_code == 403
    assert "CSRF" in response.text  # an error page with the message and a way back
    with Session(engine) as session:
        assert session.exec(select(User).where(User.name == "mallory")).first() is None


def test_another_sessions_csrf_token_does_not_do_either(client):
    other = sign_in(client, "barry")
    client.cookies.clear()
    sign_in(client, "nora")
    response = client.post("/users", data={"csrf_token": other, "name": "mallory", "role": "bursar",
                                           "password": "x" * 16})
    assert response.status_code == 403


def test_the_right_csrf_token_lets_the_form_through_and_the_change_is_logged(client, engine):
    csrf = sign_in(client, "nora")
    response = client.post("/users", data={"csrf_token": csrf, "name": "petra", "role": "bursar",
                                           "password": "p" * 16})
    assert response.status_code == 303
    with Session(engine) as session:
        added = session.exec(select(ChangeRecord).where(ChangeRecord.action == "user_added")
                             .order_by(col(ChangeRecord.id).desc())).first()
    assert added.actor == "user:nora" and added.after["name"] == "petra"


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer_and_both_are_logged(client, engine):
    wrong_password = client.post("/signin", data={"name": "nora", "password": "not the password"})
    no_such_user = client.post("/signin", data={"name": "norah", "password": "not the password"})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert SESSION_COOKIE not in wrong_password.cookies and SESSION_COOKIE not in no_such_user.cookies
    # The pages differ only where they echo the name typed back into the form.
    assert wrong_password.text.replace('value="nora"', "") == no_such_user.text.replace('value="norah"', "")
    with Session(engine) as session:
        failures = session.exec(select(ChangeRecord).where(ChangeRecord.action == "sign_in_failed")
                                .order_by(ChangeRecord.id)).all()
    assert [f.after["name"] for f in failures] == ["nora", "norah"]
    assert all(PASSWORD not in str(f.after) and "not the password" not in str(f.after) for f in failures)


def test_a_disabled_user_cannot_sign_in_and_loses_open_sessions(client, engine):
    csrf = sign_in(client, "nora")
    barry = client.__class__(client.app, follow_redirects=False)
    sign_in(barry, "barry")
    assert client.post("/users/barry/disable", data={"csrf_token": csrf, "confirmed": "yes"}).status_code == 303
    assert barry.get("/").status_code == 303
    assert barry.post("/signin", data={"name": "barry", "password": PASSWORD}).status_code == 401


def test_after_sign_in_the_user_lands_where_they_were_going_but_never_off_site(client):
    going = client.post("/signin", data={"name": "nora", "password": PASSWORD, "next": "/devices?site=x"})
    assert going.headers["location"] == "/devices?site=x"
    client.cookies.clear()
    away = client.post("/signin", data={"name": "nora", "password": PASSWORD, "next": "//evil.example/"})
    assert away.headers["location"] == "/"


def _token(engine, role: Role, sites: list[str] | None = None, expires_in: timedelta | None = None) -> str:
    with session_scope(engine) as session:
        return create_token(session, f"t-{role}", role, sites or [],
                            utcnow() + expires_in if expires_in else None, "test")[0]


def test_api_tokens_carry_their_role_like_users(client, engine):
    bursar = {"Authorization": f"Bearer {_token(engine, Role.bursar)}"}
    manager = {"Authorization": f"Bearer {_token(engine, Role.network_manager)}"}
    assert client.get("/devices", headers=bursar).status_code == 200
    assert client.get("/users", headers=bursar).status_code == 403
    assert client.get("/users", headers=manager).status_code == 200
    # No cookie, so no CSRF token is needed: a cross-site page cannot set an Authorization header.
    added = client.post("/users", headers=manager, data={"name": "tess", "role": "auditor", "password": "t" * 16})
    assert added.status_code == 303


def test_revoked_expired_and_unknown_tokens_are_refused(client, engine):
    good = _token(engine, Role.bursar)
    expired = _token(engine, Role.bursar, expires_in=timedelta(seconds=-1))
    assert client.get("/api/v1/reports/bursar?period=2025-26&site=x",
                      headers={"Authorization": f"Bearer {good}"}).status_code == 404  # in, but no such site
    with session_scope(engine) as session:
        revoke_token(session, 1, "test")
    for token in (good, expired, "ct_" + "A" * 43, "not-a-token"):
        response = client.get("/devices", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_an_auditor_sees_only_the_sites_granted(client, estate):
    sign_in(client, "audrey")  # granted Riverside Academy only
    listing = client.get("/devices").text
    assert "RIV-ICT1-PC01" in listing and "HILL-R12-PC01" not in listing
    assert client.get(f"/devices/{estate.devices['HILL-R12-PC01']}").status_code == 404
    assert client.get(f"/devices/{estate.devices['RIV-ICT1-PC01']}").status_code == 200
    overview = client.get("/").text
    assert "Riverside Academy" in overview and "Hillside Primary" not in overview


def test_an_auditor_token_with_sites_is_limited_like_an_auditor(client, engine, estate):
    token = _token(engine, Role.auditor, ["Hillside Primary"])
    listing = client.get("/devices", headers={"Authorization": f"Bearer {token}"}).text
    assert "HILL-R12-PC01" in listing and "RIV-ICT1-PC01" not in listing


def test_pages_carry_the_security_headers(client):
    response = client.get("/signin")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "<script" not in response.text and "style=" not in response.text


def test_failures_slow_down_their_address_but_never_lock_the_account(client, engine):
    for _ in range(5):  # signin_free_failures: the first five cost nothing
        assert client.post("/signin", data={"name": "nora", "password": "guess"}).status_code == 401
    throttled = client.post("/signin", data={"name": "nora", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert "Try again in" in throttled.text and SESSION_COOKIE not in throttled.cookies
    # Nora at another desk is not locked out by whoever guessed at her name.
    elsewhere = TestClient(client.app, client=("10.1.2.3", 40000), follow_redirects=False)  # same app, running
    assert elsewhere.post("/signin", data={"name": "nora", "password": PASSWORD}).status_code == 303
    with Session(engine) as session:
        failed = session.exec(select(ChangeRecord).where(ChangeRecord.action == "sign_in_failed")).all()
    assert len(failed) == 5 and {f.actor for f in failed} == {"web:testclient"}
    metrics = client.get("/metrics").text
    assert 'caretaker_signin_refused_total{reason="wrong"} 5.0' in metrics
    assert 'caretaker_signin_refused_total{reason="throttled"} 1.0' in metrics


def test_a_network_manager_cannot_disable_themselves(client, engine):
    csrf = sign_in(client, "nora")
    response = client.post("/users/nora/disable", data={"csrf_token": csrf})
    assert response.status_code == 400 and "cannot disable yourself" in response.text
    with Session(engine) as session:
        assert session.exec(select(User).where(User.name == "nora")).one().disabled is False


def test_a_sign_in_posted_from_another_site_is_refused(client):
    forged = client.post("/signin", data={"name": "nora", "password": PASSWORD},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.cookies
    ours = client.post("/signin", data={"name": "nora", "password": PASSWORD}, headers={"Origin": "http://testserver"})
    assert ours.status_code == 303


def test_sessions_abandoned_past_their_limits_are_deleted_at_the_next_sign_in(client, engine):
    sign_in(client, "barry")
    _age_sessions(engine, created_at=timedelta(hours=13))
    client.cookies.clear()
    sign_in(client, "nora")
    with Session(engine) as session:
        assert [row.user_id for row in session.exec(select(WebSession)).all()] == [
            session.exec(select(User.id).where(User.name == "nora")).one()]
