"""Small blocking JSON calls to an engine's admin API (readiness, model config, model load)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (refused, timed out)
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def call(method: str, url: str, data: Any = None, timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> Answer:
    """One HTTP call; JSON in (``data``), raw bytes out; never raises for HTTP or connection errors."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Answer(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return Answer(0, b"")
