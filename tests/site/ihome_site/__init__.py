"""An iHome-shaped Flask site for the tests (tests/site): the views the rest of iHome has
(login state, profile, rename, real-name check, houses, orders, logout) over SQL, Flask-WTF's CSRF
as iHome sets it up, and the session hook (contrib/flask/ihome_session.py) that lets the
registration function's cookie log users in.

Configuration from the environment: SITE_DB_URL (SQLAlchemy URL: mysql+pymysql://... or
sqlite:///...), SITE_SECRET_KEY, JWT_SECRET (the hook's key, as the function's), JQUERY_JS (the
jquery.min.js the pages load). Run: gunicorn -w 4 'ihome_site:create_app()' from tests/site."""
import logging
import os
import pathlib
import sys

from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFError, CSRFProtect

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "contrib" / "flask"))

import ihome_session  # noqa: E402

db = SQLAlchemy()
csrf = CSRFProtect()


class RET:
    """iHome's utils/response_code.py."""
    OK = "0"
    DBERR = "4001"
    NODATA = "4002"
    DATAEXIST = "4003"
    DATAERR = "4004"
    SESSIONERR = "4101"
    PARAMERR = "4103"
    ROLEERR = "4105"
    REQERR = "4201"


def create_app(db_url=None, secret_key=None, **config):
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=db_url or os.environ["SITE_DB_URL"],
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        SECRET_KEY=secret_key or os.environ["SITE_SECRET_KEY"],
        JQUERY_JS=os.environ.get("JQUERY_JS"),
        JSON_AS_ASCII=False,
    )
    app.config.update(config)
    app.json.ensure_ascii = False
    db.init_app(app)
    csrf.init_app(app)

    from . import models, pages, views

    app.register_blueprint(views.api, url_prefix="/api/v1.0")
    app.register_blueprint(pages.html)
    app.ihome_session = ihome_session.init_app(app, db, models.User)

    @app.errorhandler(CSRFError)
    def csrf_refused(e):
        return jsonify(errno=RET.REQERR, errmsg="非法请求"), 400

    @app.after_request
    def served_by(response):
        # Which gunicorn worker answered: the parallel test checks several did.
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    hook_log = logging.getLogger("ihome_session")
    hook_log.setLevel(logging.INFO)
    if not hook_log.handlers:  # under gunicorn nothing else would print it
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(process)d] %(name)s %(levelname)s %(message)s"))
        hook_log.addHandler(handler)
    return app
