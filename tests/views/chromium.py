"""Open a page in a real headless Chromium and report what a reader would see (test helper).

Talks the DevTools protocol over ``--remote-debugging-pipe`` (file descriptors 3 and 4, messages
are JSON terminated by a NUL byte), so it needs nothing beyond the standard library and Debian's
``chromium``. :func:`open_page` loads a file, waits for the load event and every image to decode,
and returns the console errors, uncaught exceptions, network requests, the images' sizes and a
screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


def chromium_binary() -> str | None:
    """Path of Debian's ``chromium`` (or another Chromium / Chrome on PATH), None when absent."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageResult:
    title: str
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    screenshots: list[bytes] = field(default_factory=list)
    height: int = 0


class _Pipe:
    def __init__(self, process: subprocess.Popen, write_fd: int, read_fd: int) -> None:
        self.process, self.write_fd, self.read_fd = process, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe (exit code {self.process.poll()})")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)


_IMAGES = """
(async () => {
  const images = Array.from(document.images);
  const decoded = await Promise.all(images.map(i => i.decode().then(() => true, () => false)));
  return images.map((i, k) => ({figure: i.dataset.figure || "", decoded: decoded[k], complete: i.complete,
    natural_width: i.naturalWidth, natural_height: i.naturalHeight,
    shown_width: i.getBoundingClientRect().width, shown_height: i.getBoundingClientRect().height,
    src_scheme: i.src.split(":")[0]}));
})()
"""


def open_page(path: str | Path, *, binary: str | None = None, width: int = 1280, height: int = 900,
              screenshots_at: tuple[float, ...] = (0.0,), timeout: float = 60) -> PageResult:
    """Load ``path`` in headless Chromium (fresh profile) and inspect it.

    ``screenshots_at``: fractions of the page height where a viewport-sized screenshot is taken.
    """
    binary = binary or chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium not found")
    url = Path(path).resolve().as_uri()
    profile = tempfile.mkdtemp(prefix="signals-chromium-")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def plumb() -> None:  # in the child: the protocol's descriptors 3 (commands) and 4 (answers)
        high_r, high_w = os.dup(to_browser_r), os.dup(from_browser_w)
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    command = [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
               f"--window-size={width},{height}", "about:blank"]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, pass_fds=(3, 4), preexec_fn=plumb)  # noqa: PLW1509
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(process, to_browser_w, from_browser_r)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": url}, session=session)
        pipe.wait_for("Page.loadEventFired", timeout=timeout)
        images = pipe.send("Runtime.evaluate", {"expression": _IMAGES, "awaitPromise": True, "returnByValue": True},
                           session=session, timeout=timeout)["result"]["value"]
        title = pipe.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                          session=session)["result"]["value"]
        full = int(pipe.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                                  "returnByValue": True}, session=session)["result"]["value"])
        shots = []
        for fraction in screenshots_at:
            top = int(max(0, min(full - height, fraction * full)))
            pipe.send("Runtime.evaluate", {"expression": f"window.scrollTo(0, {top})"}, session=session)
            data = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session, timeout=timeout)["data"]
            shots.append(base64.b64decode(data))
        result = PageResult(title=title, images=images, screenshots=shots, height=full)
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                result.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                      for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                result.exceptions.append(params.get("exceptionDetails", {}).get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.console_errors.append(params["entry"].get("text", ""))
            elif method == "Network.requestWillBeSent":
                result.requests.append(params.get("request", {}).get("url", ""))
        with contextlib.suppress(RuntimeError, TimeoutError):
            pipe.send("Browser.close", timeout=10)
        return result
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)
