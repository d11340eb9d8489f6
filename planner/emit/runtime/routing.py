"""Which deployment of a stage serves a request: shared by the emitted Ray app and Triton pipeline.

A request's key (its "id", or a random one) picks a champion or challenger by its share, the same way
every time for the same key; a mirror gets a copy of every request and its answer is dropped.
"""

import hashlib


def bucket(key: str, stage: str) -> int:
    """A number in [0, 100) from the request key and the stage (stages split independently)."""
    return int(hashlib.sha256(f"{stage}:{key}".encode()).hexdigest()[:8], 16) % 100


def choose(units: list, key: str, stage: str) -> tuple[str, list]:
    """(the deployment that answers, the mirrors that get a copy) for one request at one stage."""
    answering = [u for u in units if u["role"] != "mirror"]
    mirrors = [u["deployment"] for u in units if u["role"] == "mirror"]
    point, edge = bucket(key, stage), 0
    for unit in answering:
        edge += unit["percent"]
        if point < edge:
            return unit["deployment"], mirrors
    return answering[-1]["deployment"], mirrors
