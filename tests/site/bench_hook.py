"""What the session hook (contrib/flask/ihome_session.py) costs a request: a benchmark, not a test
(pytest does not collect it). Run by scripts/hook-bench, once per database: SITE_DB=mariadb
(MARIADB_URL: the server's URL without a database) or sqlite.

In one process, on a fresh database of the iHome-shaped site (ihome_site) seeded with its two
users, the hook's before-request function is timed alone, inside a request context whose cookie
is a session the function signed (PyJWT, HS256, as tests/site's `mint`), its user's session
version written to the Redis at REDIS_URL as the function writes it (session_user:<sub>):
- cached: the session already holds this token's resolution (every request after the first of a
  session, until IHOME_SESSION_RECHECK_SECONDS): the JWT check, one MGET of the session state
  (issue 19: never cached), a dict lookup, no query;
- ended: the same, for a token whose jti was logged out (session_ended:<jti>): refused after the
  MGET, the login state dropped;
- lookup: the first request of a new session of a user whose row exists (one SELECT);
- first sight: the first request of a user who registered through the function and has no row
  (SELECT, INSERT, COMMIT, then the name read back);
and, for scale, one whole request to the profile view (GET /api/v1.0/user) with the session
cached, through Flask's test client.

Prints one JSON object: medians and p99s in milliseconds. Usage: bench_hook.py [N]
"""
import json
import logging
import os
import pathlib
import secrets
import statistics
import sys
import tempfile
import time
import uuid

import jwt
import redis
import sqlalchemy as sa
from flask import session

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ihome_site import create_app, seed  # noqa: E402
from ihome_site.models import User  # noqa: E402
import ihome_session  # noqa: E402  (ihome_site put contrib/flask on the path)

KEY = secrets.token_hex(32)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
REDIS = redis.Redis.from_url(os.environ["REDIS_URL"])
WRITTEN = []  # the Redis keys this run wrote, deleted at the end


def token_for(mobile, ended=False):
    """A session as the function signs it, and its state in Redis as the function writes it."""
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "name": mobile, "mobile": mobile, "iat": now,
              "exp": now + 86400, "iss": "ihome", "jti": secrets.token_hex(16), "sv": 0}
    WRITTEN.append(f"session_user:{claims['sub']}")
    REDIS.set(WRITTEN[-1], "0", ex=86460)
    if ended:
        WRITTEN.append(f"session_ended:{claims['jti']}")
        REDIS.set(WRITTEN[-1], "1", ex=600)
    return jwt.encode(claims, KEY, algorithm="HS256",
                      headers={"kid": ihome_session.key_id(KEY.encode())})


def database():
    kind = os.environ.get("SITE_DB", "sqlite")
    if kind == "sqlite":
        return kind, f"sqlite:///{tempfile.mkdtemp()}/bench.db", lambda: None
    base = os.environ["MARIADB_URL"]
    name = f"ihome_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{base}/")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")

    def drop():
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
    return kind, f"{base}/{name}?charset=utf8mb4", drop


def stats(samples):
    ordered = sorted(samples)
    return {"n": len(samples), "median_ms": round(statistics.median(ordered) * 1e3, 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3)}


def main():
    kind, url, drop = database()
    try:
        app = create_app(url, secrets.token_hex(32), IHOME_JWT_SECRETS=[KEY])
        logging.getLogger("ihome_session").setLevel(logging.WARNING)  # a line per created row
        ids = seed.seed(app, seed.USERS)
        hook = next(f for f in app.before_request_funcs[None]
                    if f.__name__ == "load_ihome_session")
        existing = seed.USERS[1]["mobile"]
        ctx_headers = {"Cookie": f"__Host-session={token_for(existing)}"}
        cached, lookup, first, ended = [], [], [], []
        with app.test_request_context("/api/v1.0/user", base_url="https://localhost",
                                      headers=ctx_headers):
            hook()  # resolves once; later calls find it in the session
            assert session["user_id"] == ids[existing]
            for _ in range(N):
                t = time.perf_counter()
                hook()
                cached.append(time.perf_counter() - t)
            for _ in range(N):
                session.pop(ihome_session.MARK)  # a new session of the same user
                t = time.perf_counter()
                hook()
                lookup.append(time.perf_counter() - t)
                assert session["user_id"] == ids[existing]
        gone = {"Cookie": f"__Host-session={token_for(existing, ended=True)}"}
        with app.test_request_context("/api/v1.0/user", base_url="https://localhost",
                                      headers=gone):
            for _ in range(N):
                session["user_id"], session[ihome_session.MARK] = ids[existing], {}
                t = time.perf_counter()
                hook()
                ended.append(time.perf_counter() - t)
                assert "user_id" not in session
        tokens = [token_for(f"139{i:08d}") for i in range(N)]  # fresh database: no row has them
        for i in range(N):
            with app.test_request_context("/api/v1.0/user", base_url="https://localhost",
                                          headers={"Cookie": f"__Host-session={tokens[i]}"}):
                t = time.perf_counter()
                hook()
                first.append(time.perf_counter() - t)
                assert isinstance(session["user_id"], int) and session["user_id"] not in ids.values()
        client = app.test_client()
        client.set_cookie("__Host-session", token_for(existing), secure=True, httponly=True)
        view = []
        for i in range(N + 1):
            t = time.perf_counter()
            resp = client.get("/api/v1.0/user", base_url="https://localhost")
            if i:  # the first request of this client resolves; the rest are the cached case
                view.append(time.perf_counter() - t)
            assert resp.get_json()["data"]["mobile"] == existing
        with app.app_context():
            rows = User.query.count()
        assert rows == len(seed.USERS) + N, rows
        print(json.dumps({"database": kind, "cached": stats(cached), "ended": stats(ended),
                          "lookup": stats(lookup), "first_sight": stats(first),
                          "profile_view_cached": stats(view)}))
    finally:
        drop()
        if WRITTEN:
            REDIS.delete(*WRITTEN)


if __name__ == "__main__":
    main()
