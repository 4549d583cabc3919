"""Drive Debian's headless Chromium over the DevTools protocol on a pipe (no port, no extra package).

``--remote-debugging-pipe``: the browser reads commands on fd 3 and writes answers and events on
fd 4, each a JSON message ended by a NUL byte. ``open_page`` loads a file, records every console
message, uncaught exception, log entry and network request, and can evaluate JavaScript and take
screenshots. Used by the browser tests (fixture ``browser`` in conftest.py) and bench/report_render.py.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
         "--disable-extensions", "--mute-audio", "--hide-scrollbars")


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, binary: str | None = None, timeout_s: float = 60.0):
        binary = binary or chromium_binary()
        if binary is None:
            raise FileNotFoundError("chromium is not installed (tests/report/install_chromium.sh)")
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="mft-hpc-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # numbers above 4, so that moving them to 3 and 4 in the child never closes one of them
        to_browser_r, from_browser_w = (self._above_four(fd) for fd in (to_browser_r, from_browser_w))
        argv = [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"]
        # the browser expects the pipe on fds 3 and 4 exactly: bash puts them there (dash takes no fd > 9)
        script = f'exec 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-; exec "$@"'
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(["bash", "-c", script, "bash", *argv], pass_fds=(to_browser_r, from_browser_w),
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, dict] = {}
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @staticmethod
    def _above_four(fd: int) -> int:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return moved

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        with self._lock:
                            self._answers[message["id"]] = message
                            self._lock.notify_all()
                    else:
                        self.events.put(message)
        with self._lock:
            self._lock.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        with self._lock:
            while message_id not in self._answers:
                if not self._reader.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"no answer to {method} from chromium: {self.stderr_text()[-2000:]}")
                self._lock.wait(0.5)
            answer = self._answers.pop(message_id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open_page(self, path: Path, width: int = 1280, height: int = 900) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.navigate(Path(path).resolve().as_uri())
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session
        self.url = ""
        self.console: list[str] = []      # console.* calls of level error/warning, uncaught exceptions
        self.log_errors: list[str] = []   # browser log entries (CSP violations, failed loads ...)
        self.requests: list[str] = []     # every URL the page asked for
        self.load_seconds: float | None = None

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def _drain(self, until_event: str | None = None, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                event = self.browser.events.get(timeout=0.05 if until_event is None else 0.5)
            except queue.Empty:
                if until_event is None:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {until_event} within {timeout_s} s")
                continue
            if event.get("sessionId") != self.session:
                continue
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                self.console.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                self.log_errors.append(f'{params["entry"].get("source")}: {params["entry"].get("text")}')
            elif method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            if method == until_event:
                return

    def navigate(self, url: str) -> None:
        self.url = url
        started = time.perf_counter()
        self.send("Page.navigate", {"url": url})
        self._drain("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))", await_promise=True)
        self.load_seconds = time.perf_counter() - started
        self._drain()

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def foreign_requests(self) -> list[str]:
        """Requests for anything but the page itself."""
        self._drain()
        return [url for url in self.requests if url != self.url]

    def errors(self) -> list[str]:
        self._drain()
        return self.console + self.log_errors

    def screenshot(self, out: Path, full_page: bool = True, max_height: int = 6000) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                            "height": min(size["height"], max_height), "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        out.write_bytes(base64.b64decode(data))
        return out
