"""schemathesis hook for runs through `cargo lambda watch`.

The local emulator answers 500 by itself (without invoking the function) when a body sent as
application/json is not UTF-8; API Gateway instead hands such bytes over base64-encoded. Those
bodies are sent as application/octet-stream, which the emulator base64-encodes: the function
still receives the same bytes (it reads the body whatever its content-type says)."""
import schemathesis


def _is_utf8(body):
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    elif isinstance(body, str):
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not _is_utf8(case.body):
        case.media_type = "application/octet-stream"
        case.headers = {**(case.headers or {}), "Content-Type": "application/octet-stream"}
