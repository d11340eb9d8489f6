"""Load a page in headless Chromium through the DevTools protocol and report what a reader would see.

Chromium talks DevTools over two pipes (``--remote-debugging-pipe``: commands in on fd 3, replies
out on fd 4, each message JSON ended by a NUL byte), so no websocket client is needed. ``render``
opens the page, waits for its load event, collects console errors, logged errors and uncaught
exceptions, measures every <img> (naturalWidth, complete) and takes a screenshot.

Also a tool: ``python -m tests.report.browser PAGE.html OUT.png [--width 1100 --height 1500 --scale
0.6]`` writes a screenshot of the top of the page (the README's docs/report.png is made this way).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first Chromium-family browser on PATH, or None."""
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


@dataclass(frozen=True)
class PageLoad:
    loaded: bool
    images: tuple[dict, ...]  # {"alt", "naturalWidth", "complete"} per <img>
    errors: tuple[str, ...]  # console errors, logged errors, uncaught exceptions
    screenshot_png: bytes


class _DevTools:
    def __init__(self, browser: str, profile_dir: str):
        cmd_read, self._cmd_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def wire() -> None:  # in the child: DevTools reads fd 3, writes fd 4 (copies first: either may be 3 or 4)
            read_copy, write_copy = os.dup(cmd_read), os.dup(reply_write)
            os.dup2(read_copy, 3)
            os.dup2(write_copy, 4)

        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--hide-scrollbars", f"--user-data-dir={profile_dir}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=wire,
            pass_fds=(3, 4))  # subprocess closes other fds after wire() runs
        os.close(cmd_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout_s: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        if any(e.get("method") == method for e in self.events):
            return True
        while time.monotonic() < deadline:
            try:
                event = self._read(deadline)
            except TimeoutError:
                return False
            self.events.append(event)
            if event.get("method") == method:
                return True
        return False

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._reply_read], [], [], left)[0]:
                raise TimeoutError("no reply from the browser")
            chunk = os.read(self._reply_read, 1 << 20)
            if not chunk:
                raise RuntimeError("the browser closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._cmd_write)
        os.close(self._reply_read)


_IMAGES = "JSON.stringify([...document.images].map(i => ({alt: i.alt, naturalWidth: i.naturalWidth, complete: i.complete})))"


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            out.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url', '')})")
        elif method == "Runtime.exceptionThrown":
            out.append(f"exception: {params['exceptionDetails'].get('text')}")
    return out


def render(page: Path, browser: str, width: int = 1100, height: int = 1500, scale: float = 1.0,
           full_page: bool = True, timeout_s: float = 60) -> PageLoad:
    """Open ``page`` in headless ``browser``; the screenshot is the whole page, or its top
    ``height`` pixels when ``full_page`` is False, scaled by ``scale``."""
    with tempfile.TemporaryDirectory(prefix="pipeplan-chromium-") as profile:
        tools = _DevTools(browser, profile)
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"}, timeout_s=timeout_s)["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                tools.send(f"{domain}.enable", session=session)
            tools.send("Emulation.setDeviceMetricsOverride",
                       {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            loaded = tools.wait_for("Page.loadEventFired", timeout_s)
            images = json.loads(tools.send("Runtime.evaluate", {"expression": _IMAGES, "returnByValue": True},
                                           session=session)["result"]["value"])
            page_height = height
            if full_page:
                page_height = tools.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                                              "returnByValue": True}, session=session)["result"]["value"]
            shot = tools.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": full_page,
                "clip": {"x": 0, "y": 0, "width": width, "height": page_height, "scale": scale}}, session=session)
            return PageLoad(loaded, tuple(images), tuple(_errors(tools.events)), base64.b64decode(shot["data"]))
        finally:
            tools.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1500)
    parser.add_argument("--scale", type=float, default=0.6)
    args = parser.parse_args()
    browser = find_browser()
    if browser is None:
        raise SystemExit(f"no browser found (looked for {', '.join(CANDIDATES)}); apt-get install chromium")
    result = render(args.page, browser, args.width, args.height, args.scale, full_page=False)
    if result.errors or not result.loaded:
        raise SystemExit(f"the page did not load cleanly: loaded={result.loaded}, errors={list(result.errors)}")
    args.out.write_bytes(result.screenshot_png)


if __name__ == "__main__":
    main()
