"""The session hook honours the server-side session state (issue 19; docs/sessions.md "What ends a
session"): on every request with a cookie, one MGET of session_ended:<jti> and
session_user:<sub>. A token the function issued is refused when its jti was ended, when its
user's version is above its `sv`, when its user's record is missing, and when Redis does not
answer (pages: not logged in; API paths: iHome's DBERR). The Redis keys are set here directly,
as the function would write them; the cookies come from the function (a registration through
the front). Each case reads Flask's session and the SQL row after the answer."""
import socket
import time

from conftest import (REDIS, SESSION_TTL, Visitor, claims_of, free_port, mint, own_row,
                      random_mobile, register)
import ihome_session

DBERR = {"errno": "4001", "errmsg": "数据库异常"}


def logged_in(visitor):
    """The user id the site's views see, None when "not logged in" (iHome's 4101)."""
    answer = visitor.api("GET", "/user")
    if answer["errno"] == "4101":
        return None
    assert answer["errno"] == "0", answer
    return answer["data"]["user_id"]


def flask_session(visitor):
    with visitor.client.session_transaction() as s:
        return dict(s)


def function_session(front, stores, database, make_app):
    """A user registered through the function, logged in at the site once (their row made and
    cached in Flask's session): (token, claims, visitor, row)."""
    mobile = random_mobile()
    token = register(front, stores, mobile)
    claims = claims_of(token)
    sv = claims.get("sv")
    assert isinstance(sv, int) and sv >= 0, claims  # the function now issues sv
    # What the registration wrote for the verifiers: the user's version, for a day and a minute.
    assert REDIS.get(f"session_user:{claims['sub']}") == str(sv)
    assert 86400 < REDIS.ttl(f"session_user:{claims['sub']}") <= SESSION_TTL
    assert REDIS.exists(f"session_ended:{claims['jti']}") == 0
    visitor = Visitor(make_app(), token)
    user_id = logged_in(visitor)
    row = own_row(database, mobile)  # made by that first request
    assert user_id == row["id"]
    session = flask_session(visitor)
    assert session["user_id"] == row["id"] and session[ihome_session.MARK]["jti"] == claims["jti"]
    return token, claims, visitor, row


def assert_dropped(visitor, database, row):
    """Not logged in, Flask's login state for the token gone, the SQL row as it was."""
    assert logged_in(visitor) is None
    assert visitor.api("GET", "/session")["errno"] == "4101"
    session = flask_session(visitor)
    for field in ("user_id", "name", "mobile", ihome_session.MARK):
        assert field not in session, (field, session)
    assert own_row(database, row["mobile"]) == row
    assert visitor.client.get_cookie("__Host-session") is not None, "the cookie is left alone"


def test_a_logged_out_jti_is_refused_on_the_next_request_though_cached(front, stores, database,
                                                                      make_app):
    token, claims, visitor, row = function_session(front, stores, database, make_app)
    key = f"session_ended:{claims['jti']}"
    REDIS.set(key, "1", pxat=(claims["exp"] + 60) * 1000)
    try:
        # The first request after the logout, though Flask's session still holds the cached id.
        assert_dropped(visitor, database, row)
        # Another browser with a copy of the token: not logged in either, and no row made.
        assert logged_in(Visitor(make_app(), token)) is None
        assert len(database.users(row["mobile"])) == 1
    finally:
        REDIS.delete(key)
    # The check is made on every request, nothing of the verdict was kept: the key gone (as a
    # Redis flush would do, docs/sessions.md), the token is accepted again.
    assert logged_in(visitor) == row["id"]


def test_a_higher_user_version_than_the_tokens_sv_is_refused(front, stores, database, make_app):
    token, claims, visitor, row = function_session(front, stores, database, make_app)
    key, sv = f"session_user:{claims['sub']}", claims["sv"]
    try:
        REDIS.set(key, str(sv + 1), ex=SESSION_TTL)  # a password change elsewhere, say
        assert_dropped(visitor, database, row)
        assert logged_in(Visitor(make_app(), token)) is None
        REDIS.set(key, str(sv), ex=SESSION_TTL)  # equal: the token is as new as the version
        assert logged_in(visitor) == row["id"]
    finally:
        REDIS.set(key, str(sv), ex=SESSION_TTL)


def test_a_missing_user_record_is_not_logged_in(front, stores, database, make_app):
    token, claims, visitor, row = function_session(front, stores, database, make_app)
    key = f"session_user:{claims['sub']}"
    ttl = REDIS.ttl(key)
    REDIS.delete(key)  # Redis lost it (a flush, a failover to a replica that missed it)
    try:
        assert_dropped(visitor, database, row)
        REDIS.set(key, "not a number", ex=ttl)  # never a login on a value it cannot compare
        assert logged_in(visitor) is None
    finally:
        REDIS.set(key, str(claims["sv"]), ex=ttl)
    assert logged_in(visitor) == row["id"]


def test_redis_unreachable_is_never_a_login(front, stores, database, make_app):
    token, claims, visitor, row = function_session(front, stores, database, make_app)
    silent = socket.socket()  # accepts connections, never answers: a hung Redis
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        for url in (f"redis://127.0.0.1:{free_port()}/0", f"redis://127.0.0.1:"
                    f"{silent.getsockname()[1]}/0"):
            down = Visitor(make_app(IHOME_SESSION_REDIS_URL=url), token)
            # The same browser: Flask's session cookie too, holding the cached login.
            down.client.set_cookie("session", visitor.client.get_cookie("session").value)
            assert flask_session(down)["user_id"] == row["id"]
            started = time.monotonic()
            assert down.api("GET", "/user") == DBERR, url
            assert time.monotonic() - started < 5, "IHOME_SESSION_REDIS_TIMEOUT bounds the wait"
            assert down.api("GET", "/session") == DBERR
            assert b"<h1" in down.page().data, "pages still served"
            session = flask_session(down)
            assert "user_id" not in session and ihome_session.MARK not in session, session
            assert own_row(database, row["mobile"]) == row
    finally:
        silent.close()
    assert logged_in(visitor) == row["id"], "Redis back: the same token logs in again"


def test_a_token_without_sv_counts_as_version_zero_and_a_bad_sv_is_refused(database, make_app):
    # Tokens issued before sv existed (up to a day old at the deploy) have no sv: they count as
    # 0, so any version above 0 ends them. A malformed sv is refused as a malformed token.
    app = make_app()
    assert logged_in(Visitor(app, mint(random_mobile(), version=0))) is not None
    mobile = random_mobile()
    assert logged_in(Visitor(app, mint(mobile, version=1))) is None
    assert database.users(mobile) == [], "refused before the row is looked up"
    assert logged_in(Visitor(app, mint(random_mobile(), version=None))) is None  # no record
    assert logged_in(Visitor(app, mint(random_mobile(), version=2, sv=2))) is not None
    for bad in ("2", -1, True, 1.5, [1]):
        mobile = random_mobile()
        assert logged_in(Visitor(app, mint(mobile, version=0, sv=bad))) is None, bad
        assert database.users(mobile) == []
