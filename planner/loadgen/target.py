"""Where a load test may send, and what it sends.

A load test is aimed at loopback only unless the user names the host (``allow_host``): a trace
replayed at a stranger's server is an attack, not a measurement. Bodies are bytes prepared before
the run (JSON encoding inside the send loop would cost the schedule its accuracy).
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from planner.errors import DeployError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Target:
    """An HTTP endpoint and the request bodies sent to it (request i sends ``bodies[i % len(bodies)]``)."""

    url: str
    bodies: tuple[bytes, ...]
    content_type: str = "application/json"


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_url(url: str, allow_host: str | None = None) -> str:
    """``url`` if it is http(s) on loopback or on the host the user allowed; else a DeployError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeployError(f"URL '{url}': expected http://HOST:PORT/PATH (e.g. http://127.0.0.1:8000/); "
                          f"found scheme '{parts.scheme or '(none)'}'.")
    host = parts.hostname
    if _is_loopback(host):
        return url
    if allow_host is not None and host.lower() == allow_host.lower():
        return url
    raise DeployError(f"URL '{url}': host '{host}' is not this machine's loopback. A load test replays the whole "
                      f"trace at its target; to aim it at '{host}' on purpose, pass --allow-host {host}.")


def read_bodies(path: Path) -> tuple[bytes, ...]:
    """Request bodies from a JSON file: one request object, or ``{"bodies": [request, ...]}`` (cycled)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeployError(f"{path}: no such request-body file; 'pipeplan deploy' writes one with real inputs "
                          "for the first model (request.json in its --out folder).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeployError(f"{path}: cannot read the request body as JSON ({exc}).") from None
    items = data["bodies"] if isinstance(data, dict) and set(data) == {"bodies"} else [data]
    if not isinstance(items, list) or not items:
        raise DeployError(f"{path}: field 'bodies' must be a non-empty list of request objects.")
    return tuple(json.dumps(b, separators=(",", ":")).encode() for b in items)
