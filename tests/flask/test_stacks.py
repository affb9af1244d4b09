# -*- coding: utf-8 -*-
"""The Flask session hook (contrib/flask/ihome_session.py) on whatever stack runs this: every
behaviour docs/sessions.md promises, with only what each supported stack has (Python 2.7 and 3.6+,
Flask 0.10 to 3.1, Flask-SQLAlchemy 2.2 to 3.1, SQLAlchemy 1.1 to 2.x, PyJWT 1.7 and 2.x, redis-py
2.10 and later). scripts/hook-matrix runs it in one venv per stack (issue 21); stdlib unittest,
so no test runner is pinned per stack.

Environment: REDIS_URL (the real Redis: session_user:<sub> and session_ended:<jti> are written
here as the function writes them); HOOK_DB=sqlite (default: a fresh file) or HOOK_DB=mysql with
MARIADB_URL (mysql+pymysql://root@host:port, no database: a fresh one is made and dropped).
The tokens are signed here as the function signs them (PyJWT, HS256, kid); no function runs.
"""
import binascii
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "flask"))

import jwt  # noqa: E402
import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from flask import Flask, g, jsonify, session  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

import ihome_session  # noqa: E402

KEY = binascii.hexlify(os.urandom(32)).decode("ascii")
COOKIE = "__Host-session"
BASE = "https://localhost"
REDIS = redis.Redis.from_url(os.environ["REDIS_URL"])
DBERR = {"errno": "4001", "errmsg": u"数据库异常"}
WRITTEN = []  # Redis keys written here, deleted at the end


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def random_mobile():
    return "15" + "".join(str(b % 10) for b in bytearray(os.urandom(9)))


def mint(number, version=0, **claims):
    """A session as the function signs it, its user's version written to Redis (None: not)."""
    now = int(time.time())
    body = {"sub": str(uuid.uuid4()), "name": number, "mobile": number, "iat": now,
            "exp": now + 86400, "iss": "ihome", "jti": str(uuid.uuid4()), "sv": 0}
    body.update(claims)
    body = dict((k, v) for k, v in body.items() if v is not None)
    if version is not None:
        WRITTEN.append("session_user:" + body["sub"])
        REDIS.set(WRITTEN[-1], str(version), ex=86460)
    token = jwt.encode(body, KEY, algorithm="HS256",
                       headers={"kid": ihome_session.key_id(KEY.encode("ascii"))})
    return token.decode("ascii") if isinstance(token, bytes) else token  # PyJWT 1.x: bytes


class Database(object):
    def __init__(self):
        self.kind = os.environ.get("HOOK_DB", "sqlite")
        if self.kind == "sqlite":
            self.dir = tempfile.mkdtemp()
            self.url = "sqlite:///" + os.path.join(self.dir, "ihome.db")
        else:
            import pymysql
            base = os.environ["MARIADB_URL"]  # mysql+pymysql://root@127.0.0.1:3316
            host, port = base.rsplit("@", 1)[1].split(":")
            self.server = dict(host=host, port=int(port), user="root")
            self.name = "hook_stacks_" + binascii.hexlify(os.urandom(4)).decode("ascii")
            conn = pymysql.connect(autocommit=True, **self.server)
            conn.cursor().execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % self.name)
            conn.close()
            self.url = "%s/%s?charset=utf8mb4" % (base, self.name)
        self.engine = sa.create_engine(self.url)

    def rows(self, sql, **params):
        with self.engine.connect() as conn:
            return [dict(r._mapping) if hasattr(r, "_mapping") else dict(zip(r.keys(), r))
                    for r in conn.execute(sa.text(sql), params).fetchall()]

    def execute(self, sql, **params):
        with self.engine.connect() as conn, conn.begin():
            conn.execute(sa.text(sql), params)

    def drop(self):
        self.engine.dispose()
        if self.kind == "sqlite":
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            import pymysql
            conn = pymysql.connect(autocommit=True, **self.server)
            conn.cursor().execute("DROP DATABASE %s" % self.name)
            conn.close()


DB = None
LOG = []


class Capture(logging.Handler):
    def emit(self, record):
        LOG.append(record.getMessage())


def make_app(url, **config):
    """iHome's shape: ih_user_profile, @login_required views reading session["user_id"], a
    rename, a logout that clears the session, a page."""
    db = SQLAlchemy()

    class User(db.Model):
        __tablename__ = "ih_user_profile"
        __table_args__ = {"sqlite_autoincrement": True}
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(32), unique=True, nullable=False)
        password_hash = db.Column(db.String(128), nullable=False)
        mobile = db.Column(db.String(11), unique=True, nullable=False)

    app = Flask(__name__)
    app.secret_key = binascii.hexlify(os.urandom(16))
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    app.config["IHOME_JWT_SECRETS"] = [KEY]
    app.config.update(config)
    db.init_app(app)
    if config.get("create", True):
        with app.app_context():
            db.create_all()
    app.config.pop("create", None)

    def login_required(view):
        def wrapper():
            if session.get("user_id") is None:
                return jsonify(errno="4101", errmsg=u"用户未登录")
            g.user_id = session["user_id"]
            return view()
        wrapper.__name__ = view.__name__
        return wrapper

    @app.route("/api/v1.0/user")
    @login_required
    def profile():
        user = User.query.filter_by(id=g.user_id).first()
        if user is None:
            return jsonify(errno="4002", errmsg=u"无效操作")
        return jsonify(errno="0", data={"user_id": user.id, "name": user.name,
                                        "mobile": user.mobile, "session_name": session["name"]})

    @app.route("/api/v1.0/users/name", methods=["PUT"])
    @login_required
    def rename():
        from flask import request
        name = json.loads(request.data.decode("utf-8"))["name"]
        User.query.filter_by(id=g.user_id).update({"name": name})
        db.session.commit()
        session["name"] = name
        return jsonify(errno="0")

    @app.route("/api/v1.0/session", methods=["DELETE"])
    def logout():
        session.clear()
        return jsonify(errno="0")

    @app.route("/index.html")
    def index():
        return "<h1>home</h1>"

    app.ihome_session = ihome_session.init_app(app, db, User)
    return app


class Browser(object):
    """A browser's cookies, kept by hand (the test clients' cookie APIs differ across Werkzeug
    versions): the function's cookie and whatever the site sets."""

    def __init__(self, app, token=None):
        self.client = app.test_client(use_cookies=False)
        self.cookies = {}
        if token:
            self.cookies[COOKIE] = token
        self.last = None

    def request(self, method, path, body=None):
        header = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        resp = self.client.open(path, method=method, base_url=BASE,
                                headers={"Cookie": header} if header else {},
                                data=json.dumps(body) if body is not None else None,
                                content_type="application/json")
        self.last = resp
        for line in resp.headers.getlist("Set-Cookie"):
            name, rest = line.split("=", 1)
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in line or "1970" in line:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        assert resp.status_code == 200, (path, resp.status_code, resp.data[:300])
        return resp

    def api(self, method, path, body=None):
        return json.loads(self.request(method, path, body).data.decode("utf-8"))

    def user_id(self):
        answer = self.api("GET", "/api/v1.0/user")
        if answer["errno"] == "4101":
            return None
        assert answer["errno"] == "0", answer
        return answer["data"]["user_id"]


def setUpModule():
    global DB
    DB = Database()
    logging.getLogger("ihome_session").addHandler(Capture())
    logging.getLogger("ihome_session").setLevel(logging.INFO)


def tearDownModule():
    DB.drop()
    if WRITTEN:
        REDIS.delete(*WRITTEN)


class HookOnThisStack(unittest.TestCase):
    def setUp(self):
        self.app = make_app(DB.url)

    def ids(self, mobile):
        return [r["id"] for r in DB.rows("SELECT id FROM ih_user_profile WHERE mobile = :m",
                                         m=mobile)]

    def test_first_sight_makes_one_row_with_an_integer_id_and_a_new_session_costs_no_insert(self):
        mobile = random_mobile()
        browser = Browser(self.app, mint(mobile))
        answer = browser.api("GET", "/api/v1.0/user")
        self.assertEqual(answer["errno"], "0")
        self.assertEqual(self.ids(mobile), [answer["data"]["user_id"]])
        self.assertTrue(isinstance(answer["data"]["user_id"], int))
        row = DB.rows("SELECT * FROM ih_user_profile WHERE mobile = :m", m=mobile)[0]
        self.assertEqual((row["name"], row["password_hash"]), (mobile, ihome_session.NO_PASSWORD))
        # Another session (another token, another browser) of the same user: the same row.
        self.assertEqual(Browser(self.app, mint(mobile)).user_id(), row["id"])
        self.assertEqual(self.ids(mobile), [row["id"]])

    def test_first_sight_under_a_race_makes_one_row(self):
        mobile = random_mobile()
        go, answers = threading.Event(), []
        apps = [make_app(DB.url, create=False) for _ in range(4)]  # four "workers"

        def first_request(app):
            browser = Browser(app, mint(mobile))
            go.wait(10)
            answers.append(browser.user_id())

        threads = [threading.Thread(target=first_request, args=(apps[i % 4],))
                   for i in range(8)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(60)
        ids = self.ids(mobile)
        self.assertEqual(len(ids), 1)
        self.assertEqual(answers, ids * 8)

    def test_a_rename_is_kept_and_a_deleted_row_comes_back_under_a_new_id(self):
        mobile = random_mobile()
        token = mint(mobile)
        browser = Browser(self.app, token)
        first = browser.user_id()
        new_name = u"新名字" + mobile[-4:]
        self.assertEqual(browser.api("PUT", "/api/v1.0/users/name", {"name": new_name})["errno"],
                         "0")
        self.assertEqual(browser.api("GET", "/api/v1.0/user")["data"]["session_name"], new_name)
        fresh = make_app(DB.url, create=False, IHOME_SESSION_RECHECK_SECONDS=0)
        again = Browser(fresh, token).api("GET", "/api/v1.0/user")["data"]
        self.assertEqual((again["user_id"], again["session_name"]), (first, new_name))
        DB.execute("DELETE FROM ih_user_profile WHERE id = :i", i=first)
        Browser(fresh, mint(random_mobile())).user_id()  # a newer user holds the highest id
        back = Browser(fresh, token).user_id()
        self.assertEqual(self.ids(mobile), [back])
        self.assertTrue(back > first)

    def test_bad_cookies_are_not_logged_in_and_make_no_row(self):
        mobile = random_mobile()
        good = mint(mobile)
        head, payload, sig = good.split(".")
        other_key = binascii.hexlify(os.urandom(32)).decode("ascii")
        foreign = jwt.encode({"sub": "x", "mobile": mobile, "iat": 1, "exp": 2 ** 31, "iss":
                              "ihome", "jti": "y"}, other_key, algorithm="HS256")
        foreign = foreign.decode("ascii") if isinstance(foreign, bytes) else foreign
        for token in ("garbage", "..", head + "." + payload + "." + sig[:-4] + "AAAA", foreign,
                      mint(mobile, exp=1000000, iat=900000), mint(mobile, iss="elsewhere"),
                      mint(mobile, mobile=None), mint(mobile, jti=None), mint(mobile, sv="1"),
                      mint(mobile, sv=-1)):
            browser = Browser(self.app, token)
            self.assertEqual(browser.user_id(), None, token[:20])
            self.assertEqual(browser.request("GET", "/index.html").data, b"<h1>home</h1>")
        self.assertEqual(self.ids(mobile), [])

    def test_logging_out_deletes_the_cookie(self):
        browser = Browser(self.app, mint(random_mobile()))
        self.assertTrue(browser.user_id())
        browser.request("DELETE", "/api/v1.0/session")
        deleted = [h for h in browser.last.headers.getlist("Set-Cookie")
                   if h.startswith(COOKIE + "=;") or h.startswith(COOKIE + '="";')]
        self.assertEqual(len(deleted), 1, browser.last.headers.getlist("Set-Cookie"))
        self.assertTrue("Max-Age=0" in deleted[0] and "Secure" in deleted[0]
                        and "Path=/" in deleted[0], deleted[0])
        self.assertFalse(COOKIE in browser.cookies)
        self.assertEqual(browser.user_id(), None)

    def test_ended_sessions_are_refused_on_the_next_request(self):
        mobile = random_mobile()
        token = mint(mobile, sv=2, version=2)
        claims = jwt.decode(token, KEY, algorithms=["HS256"])
        browser = Browser(self.app, token)
        user_id = browser.user_id()
        self.assertTrue(user_id)
        ended = "session_ended:" + claims["jti"]
        WRITTEN.append(ended)
        REDIS.set(ended, "1", ex=600)
        self.assertEqual(browser.user_id(), None, "logged out: refused though cached")
        REDIS.delete(ended)
        self.assertEqual(browser.user_id(), user_id)
        user = "session_user:" + claims["sub"]
        REDIS.set(user, "3", ex=600)
        self.assertEqual(browser.user_id(), None, "a higher version")
        REDIS.delete(user)
        self.assertEqual(browser.user_id(), None, "no record: fail closed")
        REDIS.set(user, "2", ex=600)
        self.assertEqual(browser.user_id(), user_id)
        self.assertEqual(Browser(self.app, mint(random_mobile(), sv=None, version=1)).user_id(),
                         None, "no sv counts as 0")
        self.assertEqual(self.ids(mobile), [user_id])

    def test_redis_or_the_database_down_is_dberr_on_api_paths_and_logged_out_pages(self):
        token = mint(random_mobile())
        for app in (make_app(DB.url, create=False,
                             IHOME_SESSION_REDIS_URL="redis://127.0.0.1:%d/0" % free_port()),
                    make_app("mysql+pymysql://root@127.0.0.1:%d/none" % free_port(),
                             create=False)):
            browser = Browser(app, token)
            self.assertEqual(browser.api("GET", "/api/v1.0/user"), DBERR)
            self.assertEqual(browser.request("GET", "/index.html").data, b"<h1>home</h1>")

    def test_logs_mask_mobiles_and_show_no_token(self):
        mobile = random_mobile()
        token = mint(mobile)
        Browser(self.app, token).user_id()
        text = "\n".join(LOG)
        self.assertTrue(mobile[:3] + "****" + mobile[-4:] in text)
        self.assertFalse(mobile in text or token in text or KEY in text or "eyJ" in text)


if __name__ == "__main__":
    unittest.main()
