"""Writes events/: one complete API Gateway event per row of the contract, as HTTP API
(payload 2.0), REST API (payload 1.0) and Function URL events. The expected answer's `code` is
the file name up to `--` (e.g. registered--base64.json expects "registered"); tests/events.rs
replays every file through the built function. Run: python3 scripts/make-events.py"""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "events"
PASSWORD = "correct horse battery"
CODE = "123456"
# tests/events.rs runs the function with ALLOWED_ORIGINS set to SITE.
SITE = "https://www.ihome.example"
# What a browser sends for a cross-site form post (no preflight: text/plain).
CROSS_SITE_FORM = {"origin": "https://evil.example", "sec-fetch-site": "cross-site",
                   "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


def form(mobile, code=CODE, password=PASSWORD, password2=PASSWORD, **extra):
    return json.dumps({"mobile": mobile, "sms_code": code, "password": password,
                       "password2": password2, **extra}, ensure_ascii=False)


def spaced(number):
    """`+86 138 1234 5678`."""
    return f"+86 {number[:3]} {number[3:7]} {number[7:]}"


def full_width(text):
    """ASCII as a Chinese input method in full-width mode types it: U+FF01..U+FF5E, and the
    ideographic space."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c
                   for c in text)


def cases(prefix):
    """(file stem, method, body bytes or None, content-type, base64?, extra headers)."""
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


def encode(body, b64):
    if body is None:
        return None
    raw = body if isinstance(body, bytes) else body.encode()
    return base64.b64encode(raw).decode() if b64 else raw.decode()


def headers(ctype, body, extra):
    h = {"accept": "application/json", "accept-encoding": "gzip, deflate, br",
         "host": "abc123defg.execute-api.ap-east-1.amazonaws.com", "user-agent": "curl/8.5.0",
         "x-amzn-trace-id": "Root=1-6742e2c0-0a1b2c3d4e5f60718293a4b5",
         "x-forwarded-for": "203.0.113.10", "x-forwarded-port": "443", "x-forwarded-proto": "https"}
    if ctype:
        h["content-type"] = ctype
    if body is not None:
        h["content-length"] = str(len(body if isinstance(body, bytes) else body.encode()))
    h.update(extra)
    return h


def http_api(i, method, body, ctype, b64, extra, url=False):
    host = "k3xq7v2example.lambda-url.ap-east-1.on.aws" if url else "abc123defg.execute-api.ap-east-1.amazonaws.com"
    h = headers(ctype, body, extra)
    h["host"] = host
    route = "$default" if url else "POST /api/v1.0/users"
    e = {
        "version": "2.0", "routeKey": route, "rawPath": "/api/v1.0/users", "rawQueryString": "",
        "headers": h,
        "requestContext": {
            "accountId": "anonymous" if url else "123456789012",
            "apiId": "k3xq7v2example" if url else "abc123defg",
            "domainName": host, "domainPrefix": host.split(".")[0],
            "http": {"method": method, "path": "/api/v1.0/users", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
            "requestId": f"c6af9ac6-7b61-11e6-9a41-93e8deadb{i:03d}", "routeKey": route,
            "stage": "$default", "time": "24/Nov/2026:08:00:00 +0000", "timeEpoch": 1795507200000,
        },
        "isBase64Encoded": b64,
    }
    if body is not None:
        e["body"] = encode(body, b64)
    return e


def rest_api(i, method, body, ctype, b64, extra):
    h = headers(ctype, body, extra)
    return {
        "resource": "/api/v1.0/users", "path": "/api/v1.0/users", "httpMethod": method,
        "headers": h, "multiValueHeaders": {k: [v] for k, v in h.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123defg", "resourceId": "x1y2z3",
            "resourcePath": "/api/v1.0/users", "httpMethod": method,
            "extendedRequestId": f"BQGojGxxxx{i:03d}=", "requestTime": "24/Nov/2026:08:00:00 +0000",
            "requestTimeEpoch": 1795507200000, "path": "/prod/api/v1.0/users", "protocol": "HTTP/1.1",
            "stage": "prod", "domainPrefix": "abc123defg",
            "domainName": "abc123defg.execute-api.ap-east-1.amazonaws.com",
            "requestId": f"c6af9ac6-7b61-11e6-9a41-93e8deadc{i:03d}",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0", "accessKey": None,
                         "accountId": None, "caller": None, "user": None, "userArn": None},
        },
        "body": encode(body, b64), "isBase64Encoded": b64,
    }


def write(folder, stem, event):
    path = ROOT / folder / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")


for i, (stem, *rest) in enumerate(cases("1390000")):
    write("http-api", stem, http_api(i, *rest))
for i, (stem, *rest) in enumerate(cases("1370000")):
    write("rest-api", stem, rest_api(i, *rest))
for i, (stem, *rest) in enumerate(cases("1360000")):
    if stem in ("registered", "registered--base64", "invalid_mobile", "method_not_allowed"):
        write("function-url", stem, http_api(i, *rest, url=True))
