"""Driven by tests/sessions.rs: the Flask hook (contrib/flask/ihome_session.py) on an app whose
views read the login state the way iHome's do, against cookies the function issued. The app's
users table is iHome's ih_user_profile, in a fresh SQLite file, holding user #1 already.

Input, all from the environment (never argv): JWT_SECRET and JWT_SECRET_PREVIOUS (the keys the
hook holds), and COOKIE_<CASE> for each case in SESSION_CASES (comma-separated). Output on
stdout: one JSON object, for each case the user_id a login_required view saw (null: "not logged
in"), plus the flows below, plus "rows": {mobile: id} of the table at the end. Nothing of a
cookie or a key is printed.
"""

import functools
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "flask"))

from flask import Flask, g, jsonify, session  # noqa: E402
from flask_sqlalchemy import SQLAlchemy  # noqa: E402

import ihome_session  # noqa: E402

COOKIE = "__Host-session"
BASE = "https://localhost"  # the cookie is Secure: the test client sends it over https only


def login_required(view):
    """As iHome's utils/commons.py does it."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user_id = session.get("user_id")
        if user_id is None:
            return jsonify(errno="4101", errmsg="用户未登录")
        g.user_id = user_id
        return view(*args, **kwargs)

    return wrapper


db = SQLAlchemy()


class User(db.Model):
    __tablename__ = "ih_user_profile"
    __table_args__ = {"sqlite_autoincrement": True}
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(32), unique=True, nullable=False)
    password_hash = db.Column(db.String(128), nullable=False)
    mobile = db.Column(db.String(11), unique=True, nullable=False)


app = Flask(__name__)
app.secret_key = os.urandom(32)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "ihome.db")
db.init_app(app)
with app.app_context():
    db.create_all()
    db.session.add(User(name="user #1", password_hash="-", mobile="13000000001"))
    db.session.commit()
ihome_session.init_app(app, db, User)


@app.get("/api/v1.0/user")
@login_required
def whoami():
    return jsonify(errno="0", user_id=g.user_id, name=session.get("name"),
                   mobile=session.get("mobile"))


@app.delete("/api/v1.0/session")
def logout():
    session.clear()
    return jsonify(errno="0")


def who(client):
    answer = client.get("/api/v1.0/user", base_url=BASE)
    assert answer.status_code == 200, answer.status_code  # never an error page
    body = answer.get_json()
    return body.get("user_id") and {k: body[k] for k in ("user_id", "name", "mobile")}


def with_cookie(name):
    client = app.test_client()
    client.set_cookie(COOKIE, os.environ["COOKIE_" + name.upper()], secure=True, httponly=True)
    return client


out = {}
for case in filter(None, os.environ["SESSION_CASES"].split(",")):
    out[case] = who(with_cookie(case))

out["no_cookie"] = who(app.test_client())

# Logged in by a valid cookie, then the cookie is replaced by a tampered one: Flask's own session
# cookie still says user_id, but the login came from the JWT, so it is dropped.
client = with_cookie("valid")
first = who(client)
client.set_cookie(COOKIE, os.environ["COOKIE_TAMPERED"], secure=True, httponly=True)
out["valid_then_tampered"] = [first, who(client)]

# Logged in, then a view logs out: the answer deletes the JWT cookie, the next request is out.
client = with_cookie("valid")
first = who(client)
answer = client.delete("/api/v1.0/session", base_url=BASE)
deleted = any(h.startswith(COOKIE + "=;") and "Max-Age=0" in h
              for h in answer.headers.getlist("Set-Cookie"))
out["logout"] = [first, deleted, client.get_cookie(COOKIE) is None, who(client)]

with app.app_context():
    out["rows"] = {u.mobile: u.id for u in User.query.all()}
json.dump(out, sys.stdout)
