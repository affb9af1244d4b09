"""Writes events/: one complete API Gateway event per row of the contract, on each route, as
HTTP API (payload 2.0), REST API (payload 1.0) and Function URL events. The expected answer's
`code` is the file name up to `--` (registered--base64.json expects "registered"); what follows
`--` names the variant, and `--login` marks a row both routes share as the login's
(invalid_body--login.json posts to /api/v1.0/sessions), and likewise `--logout` (DELETE
/api/v1.0/session), `--logout-everywhere` (DELETE /api/v1.0/sessions), `--password` (PUT
/api/v1.0/users/password) and `--reset` (POST /api/v1.0/password_resets) the rows of issue 19's
routes. The route itself is the event's own path and method, which tests/events.rs reads to
arrange and check the stores. A session that verifies cannot be written into a file (the replay
runs the function with a key of its own): an event that needs one carries the placeholder
`@session-of-<mobile>@` as its cookie, and tests/events.rs stores a user under that mobile, logs
it in through the function, and puts the token in its place. tests/events.rs replays every file
through the built function. Run: python3 scripts/make-events.py"""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "events"
PASSWORD = "correct horse battery"
# A wrong password that differs from PASSWORD in one letter's case: no normalisation forgives it.
WRONG_PASSWORD = "correct horse batterY"
CODE = "123456"
# The password a change or a reset sets (not PASSWORD: the stored user's until then).
NEW_PASSWORD = "staple battery horse correct"
USERS = "/api/v1.0/users"
SESSIONS = "/api/v1.0/sessions"
SESSION = "/api/v1.0/session"
PASSWORD_PATH = "/api/v1.0/users/password"
RESETS = "/api/v1.0/password_resets"
# The routes the API declares (template.yaml), by path: an event's routeKey names the one its
# method matches, or else the path's first (as the older method_not_allowed events do).
DECLARED = {USERS: ["POST"], SESSIONS: ["POST", "DELETE"], SESSION: ["DELETE"],
            PASSWORD_PATH: ["PUT"], RESETS: ["POST"]}
# An unknown path (a typo of /users); API Gateway hands it over through a catch-all route
# ($default, {proxy+}). (It was /api/v1.0/session until issue 19 made that the logout.)
UNKNOWN = "/api/v1.0/user"
# A cookie that is a JWT in form but signed with another key: not logged in, like none at all.
FORGED_COOKIE = ("__Host-session=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                 "eyJzdWIiOiIwMTkzMDAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDAiLCJzdiI6OTl9."
                 "c2lnbmVkIHdpdGggYW5vdGhlciBrZXk")
# Where registrations come from. Logins come from an address of their own per API type, so
# their throttle counts (per source address) are theirs alone; tests/events.rs resets them.
REGISTER_IP = "203.0.113.10"
LOGIN_IP = {"http-api": "203.0.113.21", "rest-api": "203.0.113.22", "function-url": "203.0.113.23"}
# What a client may write into X-Forwarded-For: never the address a throttle counts.
FORGED_IP = "192.0.2.99"
# tests/events.rs runs the function with ALLOWED_ORIGINS set to SITE.
SITE = "https://www.ihome.example"
# What a browser sends for a cross-site form post (no preflight: text/plain).
CROSS_SITE_FORM = {"origin": "https://evil.example", "sec-fetch-site": "cross-site",
                   "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


def form(mobile, code=CODE, password=PASSWORD, password2=PASSWORD, **extra):
    return json.dumps({"mobile": mobile, "sms_code": code, "password": password,
                       "password2": password2, **extra}, ensure_ascii=False)


def login(mobile, password=PASSWORD, **extra):
    return json.dumps({"mobile": mobile, "password": password, **extra}, ensure_ascii=False)


def spaced(number):
    """`+86 138 1234 5678`."""
    return f"+86 {number[:3]} {number[3:7]} {number[7:]}"


def full_width(text):
    """ASCII as a Chinese input method in full-width mode types it: U+FF01..U+FF5E, and the
    ideographic space."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c
                   for c in text)


def cases(prefix):
    """Registration rows: (file stem, method, body bytes or None, content-type, base64?, extra
    headers), all to USERS. Mobiles <prefix>0001 to <prefix>0023."""
    m = lambda i: f"{prefix}{i:04d}"
    j = "application/json"
    return [
        ("registered", "POST", form(m(1)), j, False, {}),
        ("registered--base64", "POST", form(m(2)), j, True, {}),
        ("registered--plus86-text-plain", "POST", form("+86" + m(3)), "text/plain", False, {}),
        ("invalid_body", "POST", "{not json", j, False, {}),
        ("invalid_body--empty", "POST", None, j, False, {}),
        ("invalid_body--array", "POST", "[1, 2]", j, False, {}),
        ("invalid_body--not-utf8", "POST", b"\xff\xfe{\"mobile\"}", j, True, {}),
        ("invalid_body--form-encoded", "POST", f"mobile={m(4)}&sms_code={CODE}",
         "application/x-www-form-urlencoded", False, {}),
        ("missing_field", "POST", json.dumps({"mobile": m(5), "sms_code": CODE, "password": PASSWORD}), j, False, {}),
        ("missing_field--number", "POST", json.dumps({"mobile": m(6), "sms_code": 123456,
                                                      "password": PASSWORD, "password2": PASSWORD}), j, False, {}),
        ("invalid_mobile", "POST", form(m(7) + "9999"), j, False, {}),
        ("invalid_mobile--english", "POST", form(m(8) + "abc"), j, False, {"accept-language": "en-US,en;q=0.9"}),
        ("password_mismatch", "POST", form(m(9), password2="correct horse battery!"), j, False, {}),
        ("weak_password", "POST", form(m(10), password="iloveyou", password2="iloveyou"), j, False, {}),
        ("invalid_sms_code", "POST", form(m(11), code="12345a"), j, False, {}),
        ("sms_code_expired", "POST", form(m(12)), j, False, {}),
        ("sms_code_mismatch", "POST", form(m(13)), j, False, {}),
        ("mobile_exists", "POST", form(m(14)), j, False, {}),
        ("sms_store_unavailable", "POST", form(m(15)), j, False, {}),
        ("user_store_unavailable", "POST", form(m(16)), j, False, {}),
        ("body_too_large", "POST", form(m(17), padding="x" * 17000), j, False, {}),
        ("method_not_allowed", "GET", None, None, False, {}),
        # Mobiles as people type them: spaced with a country code, and full width (a Chinese
        # input method); both key the same 11 digits.
        ("registered--spaced-plus86", "POST", form(spaced(m(18))), j, False, {}),
        ("registered--full-width-mobile", "POST", form(full_width(m(19))), j, False, {}),
        # A password typed full width is PASSWORD after NFKC: it hashes as PASSWORD.
        ("registered--full-width-password", "POST",
         form(m(20), password=full_width(PASSWORD), password2=PASSWORD), j, False, {}),
        ("forbidden_origin", "POST", form(m(21)), "text/plain", False, CROSS_SITE_FORM),
        ("forbidden_origin--not-listed", "POST", form(m(22)), j, False, {"origin": "https://evil.example"}),
        ("registered--same-origin", "POST", form(m(23)), j, False,
         {"origin": SITE, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors",
          "x-csrftoken": "IjY0ZjRkZmI4"}),
    ]


def login_cases(prefix):
    """Login rows, as cases() but to SESSIONS, with mobiles <prefix>0101 and up (apart from the
    registrations'), and the unknown path last."""
    m = lambda i: f"{prefix}{i:04d}"
    j = "application/json"
    return [(stem, SESSIONS, *rest) for stem, *rest in [
        # tests/events.rs stores a user with PASSWORD for logged_in*, bad_credentials and
        # too_many_attempts, and a spent throttle count for too_many_attempts.
        ("logged_in", "POST", login(m(101)), j, False, {}),
        # As a Chinese input method types both: a spaced +86 number, a full-width password.
        ("logged_in--full-width", "POST", login(spaced(m(102)), full_width(PASSWORD)), j, False, {}),
        ("logged_in--same-origin", "POST", login(m(103)), j, False,
         {"origin": SITE, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}),
        ("bad_credentials", "POST", login(m(104), WRONG_PASSWORD), j, False, {}),
        ("bad_credentials--unknown-mobile", "POST", login(m(105)), j, False, {}),
        # The right password, refused all the same: the limit is reached.
        ("too_many_attempts", "POST", login(m(106)), j, False, {}),
        ("throttle_store_unavailable", "POST", login(m(107)), j, False, {}),
        ("user_store_unavailable--login", "POST", login(m(108)), j, False, {}),
        ("invalid_body--login", "POST", "{not json", j, False, {}),
        ("missing_field--login", "POST", json.dumps({"mobile": m(109)}), j, False, {}),
        ("invalid_mobile--login", "POST", login(m(110) + "9999"), j, False, {}),
        ("forbidden_origin--login", "POST", login(m(111)), "text/plain", False, CROSS_SITE_FORM),
        ("body_too_large--login", "POST", login(m(112), padding="x" * 17000), j, False, {}),
        ("method_not_allowed--login", "GET", None, None, False, {}),
    ]] + [("not_found", UNKNOWN, "POST", login(m(113)), j, False, {})]


def change(password=PASSWORD, new=NEW_PASSWORD, new2=NEW_PASSWORD, **extra):
    return json.dumps({"password": password, "new_password": new, "new_password2": new2, **extra},
                      ensure_ascii=False)


def session_of(mobile):
    """The cookie of a session of `mobile`'s user, filled in by tests/events.rs."""
    return {"cookie": f"__Host-session=@session-of-{mobile}@"}


def session_cases(prefix):
    """Issue 19's rows that need no session: logout, log out everywhere and a password change
    without one (the session is checked after the path, method, origin and size, before the
    body), and the reset's, which needs an SMS code for a reset and no session. Mobiles
    <prefix>0201 and up. tests/events.rs: for password_reset, sms_code_mismatch--reset,
    sms_code_expired--reset-registration-code and the two *_store_unavailable--reset it stores a
    user holding PASSWORD, and a reset code (`sms_code_reset_<mobile>`, 000000 for the mismatch),
    or only a registration code (`sms_code_<mobile>`) for the registration-code row."""
    m = lambda i: f"{prefix}{i:04d}"
    j = "application/json"
    forged = {"cookie": FORGED_COOKIE}
    return [
        # Logout: DELETE /api/v1.0/session. Answered with the cookie deleted all the same.
        ("not_logged_in--logout", SESSION, "DELETE", None, None, False, {}),
        ("not_logged_in--logout-forged-cookie", SESSION, "DELETE", None, None, False, forged),
        # iHome's pages ask GET /api/v1.0/session whether someone is logged in: not here.
        ("method_not_allowed--logout", SESSION, "GET", None, None, False, {}),
        # Another site cannot log a visitor out either (no body, as a cross-site fetch sends).
        ("forbidden_origin--logout", SESSION, "DELETE", None, None, False, CROSS_SITE_FORM),
        # Log out everywhere: DELETE /api/v1.0/sessions.
        ("not_logged_in--logout-everywhere", SESSIONS, "DELETE", None, None, False, {}),
        ("not_logged_in--logout-everywhere-forged-cookie", SESSIONS, "DELETE", None, None, False, forged),
        ("forbidden_origin--logout-everywhere", SESSIONS, "DELETE", None, None, False, CROSS_SITE_FORM),
        # Password change: PUT /api/v1.0/users/password.
        ("not_logged_in--password", PASSWORD_PATH, "PUT", change(), j, False, {}),
        ("not_logged_in--password-forged-cookie", PASSWORD_PATH, "PUT", change(), j, False, forged),
        # The session before the body: an unreadable body without one is not_logged_in.
        ("not_logged_in--password-invalid-body", PASSWORD_PATH, "PUT", "{not json", j, False, {}),
        ("method_not_allowed--password", PASSWORD_PATH, "POST", change(), j, False, {}),
        ("forbidden_origin--password", PASSWORD_PATH, "PUT", change(), "text/plain", False, CROSS_SITE_FORM),
        # The size before the session.
        ("body_too_large--password", PASSWORD_PATH, "PUT", change(padding="x" * 17000), j, False, {}),
        # With a session (tests/events.rs logs a user in for the placeholder).
        ("logged_out", SESSION, "DELETE", None, None, False, session_of(m(220))),
        ("logged_out_everywhere", SESSIONS, "DELETE", None, None, False, session_of(m(221))),
        ("password_changed", PASSWORD_PATH, "PUT", change(), j, False, session_of(m(222))),
        ("bad_credentials--password", PASSWORD_PATH, "PUT", change(password=WRONG_PASSWORD), j, False,
         session_of(m(223))),
        ("weak_password--password", PASSWORD_PATH, "PUT", change(new="iloveyou", new2="iloveyou"), j, False,
         session_of(m(224))),
        ("session_store_unavailable--logout", SESSION, "DELETE", None, None, False, session_of(m(225))),
        ("session_store_unavailable--password", PASSWORD_PATH, "PUT", change(), j, False, session_of(m(226))),
        # Reset: POST /api/v1.0/password_resets, a registration's body.
        ("password_reset", RESETS, "POST", form(m(201), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        ("invalid_body--reset", RESETS, "POST", "{not json", j, False, {}),
        ("missing_field--reset", RESETS, "POST", json.dumps({"mobile": m(202), "sms_code": CODE}), j, False, {}),
        ("invalid_mobile--reset", RESETS, "POST", form(m(203) + "9999", password=NEW_PASSWORD,
                                                      password2=NEW_PASSWORD), j, False, {}),
        ("password_mismatch--reset", RESETS, "POST", form(m(204), password=NEW_PASSWORD,
                                                         password2=NEW_PASSWORD + "!"), j, False, {}),
        ("weak_password--reset", RESETS, "POST", form(m(205), password="iloveyou", password2="iloveyou"), j, False, {}),
        ("invalid_sms_code--reset", RESETS, "POST", form(m(206), code="12345a", password=NEW_PASSWORD,
                                                        password2=NEW_PASSWORD), j, False, {}),
        # No reset code stored for the number.
        ("sms_code_expired--reset", RESETS, "POST", form(m(207), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        # Only a registration code is stored: it cannot reset.
        ("sms_code_expired--reset-registration-code", RESETS, "POST",
         form(m(208), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        ("sms_code_mismatch--reset", RESETS, "POST", form(m(209), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        ("sms_store_unavailable--reset", RESETS, "POST", form(m(210), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        ("user_store_unavailable--reset", RESETS, "POST", form(m(211), password=NEW_PASSWORD, password2=NEW_PASSWORD), j, False, {}),
        ("method_not_allowed--reset", RESETS, "GET", None, None, False, {}),
        ("forbidden_origin--reset", RESETS, "POST", form(m(212), password=NEW_PASSWORD, password2=NEW_PASSWORD),
         "text/plain", False, CROSS_SITE_FORM),
        ("body_too_large--reset", RESETS, "POST", form(m(213), padding="x" * 17000), j, False, {}),
    ]


def every_case(prefix):
    """Every row: (file stem, path, method, body, content-type, base64?, extra headers)."""
    return ([(stem, USERS, *rest) for stem, *rest in cases(prefix)] + login_cases(prefix)
            + session_cases(prefix))


def route_key(path, method):
    """The route of the API that hands the event over (template.yaml's, or the catch-all)."""
    if path not in DECLARED:
        return None
    return f"{method if method in DECLARED[path] else DECLARED[path][0]} {path}"


def encode(body, b64):
    if body is None:
        return None
    raw = body if isinstance(body, bytes) else body.encode()
    return base64.b64encode(raw).decode() if b64 else raw.decode()


def headers(ctype, body, extra, forwarded_for):
    h = {"accept": "application/json", "accept-encoding": "gzip, deflate, br",
         "host": "abc123defg.execute-api.ap-east-1.amazonaws.com", "user-agent": "curl/8.5.0",
         "x-amzn-trace-id": "Root=1-6742e2c0-0a1b2c3d4e5f60718293a4b5",
         "x-forwarded-for": forwarded_for, "x-forwarded-port": "443", "x-forwarded-proto": "https"}
    if ctype:
        h["content-type"] = ctype
    if body is not None:
        h["content-length"] = str(len(body if isinstance(body, bytes) else body.encode()))
    h.update(extra)
    return h


def source(path, api):
    """(sourceIp, X-Forwarded-For): what API Gateway saw, and the header as it arrives (a login's
    carries a forged address first, as a client may write one)."""
    if path == USERS:
        return REGISTER_IP, REGISTER_IP
    ip = LOGIN_IP[api]
    return ip, f"{FORGED_IP}, {ip}"


def http_api(i, path, method, body, ctype, b64, extra, url=False):
    host = "k3xq7v2example.lambda-url.ap-east-1.on.aws" if url else "abc123defg.execute-api.ap-east-1.amazonaws.com"
    ip, forwarded = source(path, "function-url" if url else "http-api")
    h = headers(ctype, body, extra, forwarded)
    h["host"] = host
    route = "$default" if url or path == UNKNOWN else route_key(path, method)
    e = {
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "anonymous" if url else "123456789012",
            "apiId": "k3xq7v2example" if url else "abc123defg",
            "domainName": host, "domainPrefix": host.split(".")[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": ip, "userAgent": "curl/8.5.0"},
            "requestId": f"c6af9ac6-7b61-11e6-9a41-93e8deadb{i:03d}", "routeKey": route,
            "stage": "$default", "time": "24/Nov/2026:08:00:00 +0000", "timeEpoch": 1795507200000,
        },
        "isBase64Encoded": b64,
    }
    # Payload 2.0 hands cookies over in their own list, not as a header.
    if "cookie" in h:
        e["cookies"] = h.pop("cookie").split("; ")
    if body is not None:
        e["body"] = encode(body, b64)
    return e


def rest_api(i, path, method, body, ctype, b64, extra):
    ip, forwarded = source(path, "rest-api")
    h = headers(ctype, body, extra, forwarded)
    # An unknown path reaches the function only through a catch-all resource.
    resource = "/{proxy+}" if path == UNKNOWN else path
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": h, "multiValueHeaders": {k: [v] for k, v in h.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")} if path == UNKNOWN else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123defg", "resourceId": "x1y2z3",
            "resourcePath": resource, "httpMethod": method,
            "extendedRequestId": f"BQGojGxxxx{i:03d}=", "requestTime": "24/Nov/2026:08:00:00 +0000",
            "requestTimeEpoch": 1795507200000, "path": f"/prod{path}", "protocol": "HTTP/1.1",
            "stage": "prod", "domainPrefix": "abc123defg",
            "domainName": "abc123defg.execute-api.ap-east-1.amazonaws.com",
            "requestId": f"c6af9ac6-7b61-11e6-9a41-93e8deadc{i:03d}",
            "identity": {"sourceIp": ip, "userAgent": "curl/8.5.0", "accessKey": None,
                         "accountId": None, "caller": None, "user": None, "userArn": None},
        },
        "body": encode(body, b64), "isBase64Encoded": b64,
    }


def write(folder, stem, event):
    path = ROOT / folder / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")


for i, (stem, *rest) in enumerate(every_case("1390000")):
    write("http-api", stem, http_api(i, *rest))
for i, (stem, *rest) in enumerate(every_case("1370000")):
    write("rest-api", stem, rest_api(i, *rest))
for i, (stem, *rest) in enumerate(every_case("1360000")):
    if stem in ("registered", "registered--base64", "invalid_mobile", "method_not_allowed",
                "logged_in", "bad_credentials", "not_logged_in--logout",
                "not_logged_in--password-forged-cookie"):
        write("function-url", stem, http_api(i, *rest, url=True))
