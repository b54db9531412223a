"""A local replay of Meta's ``ads_archive`` endpoint (127.0.0.1) for the fetch tests.

It serves either *recorded* pages (real response bodies, chained by their real ``after`` cursors) or a
*library* of real ads (cut from a real pull) paged with cursors built here, filtered the way Meta filters
(``search_page_ids``, the delivery window, ``limit``). Like Meta it echoes the caller's token inside
``ad_snapshot_url`` and ``paging.next``. Faults are queued one per request (:data:`FAULTS`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

FAULTS = ("rate_buc", "rate_app", "rate_429", "500", "502html", "drop", "truncated", "slow", "token",
          "reduce", "error_body")


def cursor(offset: int) -> str:
    """A cursor as opaque as Meta's (base64 of the offset)."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def offset_of(c: str | None) -> int:
    if not c:
        return 0
    return int(json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))["o"])


def _day(s: Any) -> str | None:
    return str(s)[:10] if s else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client killed mid-request
        pass


class ReplayServer:
    """``start()``, then point ``--api-url`` at :attr:`url`. ``requests`` holds every query received."""

    def __init__(self, token: str, *, ads: list[dict[str, Any]] | None = None,
                 recorded: dict[str | None, bytes] | None = None, delay: float = 0.0,
                 slow_s: float = 1.5, error_body: dict[str, Any] | None = None) -> None:
        self.token = token
        self.ads = ads or []
        self.recorded = recorded
        self.delay = delay
        self.slow_s = slow_s
        self.error_body = error_body or {"message": "Invalid parameter", "type": "OAuthException", "code": 100}
        self.faults: deque[str | None] = deque()
        self.reduce_if_limit_over: int | None = None
        self.reduce_if_days_over: int | None = None
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self._httpd: _Server | None = None

    # -- life ----------------------------------------------------------------------------------------
    def start(self) -> ReplayServer:
        handler = type("Handler", (_Handler,), {"replay": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def data_requests(self) -> list[dict[str, str]]:
        with self.lock:
            return list(self.requests)

    # -- what Meta would answer ----------------------------------------------------------------------
    def select(self, q: dict[str, str]) -> list[dict[str, Any]]:
        """The library's ads that match ``q`` (page ids, delivery overlapping the window), in order."""
        ids = set(json.loads(q["search_page_ids"])) if q.get("search_page_ids") else None
        lo, hi = q.get("ad_delivery_date_min"), q.get("ad_delivery_date_max")
        out = []
        for ad in self.ads:
            if ids is not None and str(ad.get("page_id")) not in ids:
                continue
            start, stop = _day(ad.get("ad_delivery_start_time")), _day(ad.get("ad_delivery_stop_time"))
            if hi and start and start > hi:
                continue
            if lo and stop and stop < lo:
                continue
            out.append(ad)
        return out

    def page(self, q: dict[str, str], base: str) -> bytes:
        if self.recorded is not None:
            body = self.recorded.get(q.get("after"), b'{"data":[]}')
            return body.replace(b"REDACTED", self.token.encode())
        ads = self.select(q)
        o, n = offset_of(q.get("after")), int(q["limit"])
        chunk = ads[o:o + n]
        data = []
        for ad in chunk:
            ad = dict(ad)
            if isinstance(ad.get("ad_snapshot_url"), str):
                ad["ad_snapshot_url"] = ad["ad_snapshot_url"].replace("REDACTED", self.token)
            data.append(ad)
        body: dict[str, Any] = {"data": data}
        if chunk:
            body["paging"] = {"cursors": {"before": cursor(o), "after": cursor(o + len(chunk))}}
            if o + len(chunk) < len(ads):
                nq = {**q, "access_token": self.token, "after": cursor(o + len(chunk))}
                body["paging"]["next"] = f"{base}?{urlencode(nq)}"
        return json.dumps(body, ensure_ascii=False).encode()


def _graph_error(code: int, message: str, *, subcode: int | None = None, transient: bool = False) -> bytes:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                           "is_transient": transient, "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        err["error_subcode"] = subcode
    return json.dumps({"error": err}).encode()


class _Handler(BaseHTTPRequestHandler):
    replay: ReplayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              content_type: str = "application/json; charset=UTF-8") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
            self.close_connection = True

    def do_GET(self) -> None:
        rp = self.replay
        parts = urlsplit(self.path)
        q = dict(parse_qsl(parts.query, keep_blank_values=True))
        with rp.lock:
            rp.requests.append(q)
            fault = rp.faults.popleft() if rp.faults else None
        if rp.delay:
            time.sleep(rp.delay)
        base = f"http://{self.headers.get('Host')}{parts.path}"
        if not parts.path.endswith("/ads_archive"):
            return self._send(404, _graph_error(803, "Unknown path components"))
        if fault == "drop":
            self.close_connection = True
            return None
        if fault == "slow":
            time.sleep(rp.slow_s)
        if fault == "rate_buc":
            usage = {"1234567890": [{"type": "ads_archive", "call_count": 100, "total_cputime": 20,
                                     "total_time": 35, "estimated_time_to_regain_access": 2}]}
            return self._send(400, _graph_error(613, "Calls to this api have exceeded the rate limit."),
                              {"x-business-use-case-usage": json.dumps(usage)})
        if fault == "rate_app":
            return self._send(400, _graph_error(4, "Application request limit reached", transient=True),
                              {"x-app-usage": json.dumps({"call_count": 100, "total_cputime": 12,
                                                          "total_time": 40})})
        if fault == "rate_429":
            return self._send(429, b"", {"Retry-After": "7"}, content_type="text/plain")
        if fault == "500":
            return self._send(500, _graph_error(2, "An unexpected error has occurred. Please retry your "
                                                   "request later.", transient=True))
        if fault == "502html":
            return self._send(502, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if fault == "token":
            return self._send(400, _graph_error(190, "Error validating access token: Session has expired on "
                                                     "Sunday, 09-Jun-24 10:00:00 PDT.", subcode=463))
        if fault == "reduce":
            return self._send(500, _graph_error(1, "Please reduce the amount of data you're asking for, then "
                                                   "retry your request"))
        if fault == "error_body":
            return self._send(400, json.dumps({"error": rp.error_body}).encode())
        if q.get("access_token") != rp.token:
            return self._send(400, _graph_error(190, "Invalid OAuth access token - Cannot parse access token"))
        days = None
        if q.get("ad_delivery_date_min") and q.get("ad_delivery_date_max"):
            from datetime import date
            days = (date.fromisoformat(q["ad_delivery_date_max"])
                    - date.fromisoformat(q["ad_delivery_date_min"])).days + 1
        if (rp.reduce_if_limit_over is not None and int(q.get("limit", 0)) > rp.reduce_if_limit_over) or \
                (rp.reduce_if_days_over is not None and days is not None and days > rp.reduce_if_days_over):
            return self._send(500, _graph_error(1, "Please reduce the amount of data you're asking for, then "
                                                   "retry your request"))
        body = rp.page(q, base)
        if fault == "truncated":
            return self._send(200, body[: len(body) // 2])
        usage_now = {"call_count": min(99, len(rp.requests)), "total_cputime": 3, "total_time": 5}
        return self._send(200, body, {"x-app-usage": json.dumps(usage_now)})
