"""The site's one origin, http://127.0.0.1:<port>, as CloudFront or an ALB would be in front of
iHome: the function's routes go to the function (under `cargo lambda watch`), everything else to
the Flask site (gunicorn). To the browser the pages, the Flask API and the function are one site,
so the function's __Host-session cookie reaches the Flask hook.

FUNCTION_ROUTES (registration, and logout, log out everywhere, password change and reset) are
sent to the function; LOGIN_ROUTE joins them when the front is made with
function_login=True, as after the cut-over (docs/migration.md): the function's login route. With
function_login=False (SITE_FUNCTION_LOGIN=0) POST /api/v1.0/sessions reaches Flask, which has no
such view (404). `exchanges` records what went to the function: method, path, status, the
answer's `code` and the headers sent."""
import http.client
import http.server
import json
import threading
import urllib.parse

FUNCTION_ROUTES = frozenset({
    ("POST", "/api/v1.0/users"),
    # What ends sessions (issue 19): only the function can record it. iHome's my.js logs out
    # with DELETE /api/v1.0/session; the site's own logout view no longer sees it.
    ("DELETE", "/api/v1.0/session"), ("DELETE", "/api/v1.0/sessions"),
    ("PUT", "/api/v1.0/users/password"), ("POST", "/api/v1.0/password_resets"),
})
LOGIN_ROUTE = ("POST", "/api/v1.0/sessions")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
              "te", "trailer", "content-length", "host"}


class Front:
    def __init__(self, site_port, function_login=False):
        self.site_port = site_port
        self.routes = FUNCTION_ROUTES | ({LOGIN_ROUTE} if function_login else set())
        self.function = None  # set once the function runs with ALLOWED_ORIGINS = self.origin
        self.exchanges = []  # what went to the function: method, path, status, headers sent
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                front.relay(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = relay

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def upstream(self, method, path):
        """(port, path) the request goes to."""
        if (method, urllib.parse.urlsplit(path).path) in self.routes:
            return self.function.port, "/lambda-url/ihome-register" + path
        return self.site_port, path

    def relay(self, handler):
        method = handler.command
        body = handler.rfile.read(int(handler.headers.get("content-length") or 0))
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = handler.headers.get("host", f"127.0.0.1:{self.port}")
        port, path = self.upstream(method, handler.path)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            status, answer_headers = resp.status, resp.getheaders()
        finally:
            conn.close()
        if port != self.site_port:
            try:
                code = json.loads(answer).get("code")
            except ValueError:
                code = None
            self.exchanges.append({"method": method, "path": handler.path, "status": status,
                                   "code": code,
                                   "headers": {k.lower(): v for k, v in headers.items()}})
        handler.send_response(status)
        for k, v in answer_headers:  # every Set-Cookie kept
            if k.lower() not in HOP_BY_HOP | {"date", "server"}:
                handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(answer)

    def stop(self):
        self.httpd.shutdown()
