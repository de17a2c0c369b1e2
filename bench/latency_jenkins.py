"""A Jenkins answering on 127.0.0.1 with a fixed latency: just enough to trigger builds.

It answers what the scheduler's Jenkins executor asks when it triggers: the
crumb, ``buildWithParameters`` (201 and the ``Location`` of a new queue item,
as Jenkins does) and the queue item's JSON (waiting for an executor). Every
request sleeps ``latency`` seconds first, standing for the network and Jenkins'
own work, so the benchmark shows what the triggering loop adds to it.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_QUEUE_ITEM = re.compile(r"^/queue/item/(\d+)/api/json")
_TRIGGER = re.compile(r"^/job/([^/]+)/buildWithParameters")


class LatencyJenkins:
    """Use as a context manager; ``url`` is the server, ``requests`` counts by endpoint."""

    def __init__(self, latency: float = 0.005):
        self.latency = latency
        self.requests: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        jenkins = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"    # keep-alive, as Jenkins

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict | None = None, **headers):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Jenkins", "2.440")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _count(self, endpoint: str) -> None:
                time.sleep(jenkins.latency)
                with jenkins._lock:
                    jenkins.requests[endpoint] = jenkins.requests.get(endpoint, 0) + 1

            def do_GET(self):
                if self.path.startswith("/crumbIssuer/api/json"):
                    self._count("crumb")
                    return self._answer(200, {"crumb": "0123456789abcdef",
                                              "crumbRequestField": "Jenkins-Crumb"})
                match = _QUEUE_ITEM.match(self.path)
                if match:
                    self._count("queue_item")
                    return self._answer(200, {
                        "id": int(match.group(1)), "blocked": False, "buildable": True,
                        "stuck": False, "why": "Waiting for next available executor",
                        "url": f"queue/item/{match.group(1)}/", "actions": []})
                self._count("other")
                self._answer(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                match = _TRIGGER.match(self.path)
                if match:
                    self._count("buildWithParameters")
                    item = next(jenkins._ids)
                    return self._answer(201, None,
                                        Location=f"{jenkins.url}/queue/item/{item}/")
                self._count("other")
                self._answer(404, {"error": "not found"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "LatencyJenkins":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
