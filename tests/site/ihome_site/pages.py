"""The static pages, as iHome's web_html.py serves them: any /<name>.html from static/html, with
a csrf_token cookie that the pages send back as X-CSRFToken. register.html is the one the browser
tests already use (tests/browser/site); jquery comes from npm (scripts/site-test)."""
import re

from flask import Blueprint, abort, current_app, make_response, send_file
from flask_wtf import csrf

from . import ROOT

html = Blueprint("web_html", __name__)
PAGE = re.compile(r"[a-z]+\.html")
SHARED = {"register.html": ROOT / "tests" / "browser" / "site" / "register.html"}


@html.get("/")
@html.get("/<name>")
def page(name="index.html"):
    if not PAGE.fullmatch(name):
        abort(404)
    if name in SHARED:
        resp = make_response(send_file(SHARED[name], mimetype="text/html"))
    else:
        resp = make_response(current_app.send_static_file("html/" + name))
    resp.set_cookie("csrf_token", csrf.generate_csrf())
    resp.headers["Cache-Control"] = "no-store"
    return resp


@html.get("/js/jquery.min.js")
def jquery():
    if not current_app.config.get("JQUERY_JS"):
        abort(404)
    return send_file(current_app.config["JQUERY_JS"], mimetype="application/javascript")
