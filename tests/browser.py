"""Open the built book in headless Chromium and check each page as a reader's browser shows it.

:func:`check_site` serves a built HTML folder on a local port (as a static
host would), opens every page in headless Chromium and reports, per page:

* **console errors**: ``console.error`` calls, uncaught exceptions and
  resources the browser failed to load;
* **raw TeX**: a math element MathJax did not typeset, or TeX delimiters
  (``\\(``, ``\\[``, ``$$``, ``\\begin{``) left in the text of the page;
* **broken images**: an ``<img>`` that does not decode;
* **broken internal links**: a link to a page of the site that does not
  exist, or to an anchor that the page does not have.

It can keep a screenshot of each page (the first screen). The browser is
driven through the DevTools protocol over ``--remote-debugging-pipe``, so
nothing beyond Chromium itself is needed. :func:`find_chromium` says which
browser would be used (``$SPARSENB_CHROMIUM``, else ``chromium``,
``chromium-browser``, ``google-chrome`` on the ``PATH``).
"""
from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["CHROMIUM_ENV", "PageReport", "find_chromium", "Chromium", "check_site"]

CHROMIUM_ENV = "SPARSENB_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The browser to use: ``$SPARSENB_CHROMIUM`` if set, else the first Chromium on the ``PATH``; ``None`` if none."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if Path(env).is_file() or shutil.which(env) else None
    return next((shutil.which(c) for c in _CANDIDATES if shutil.which(c)), None)


class Chromium:
    """A headless Chromium driven over the DevTools protocol on a pipe (POSIX), as a context manager.

    ``send(method, params, session)`` returns the result of one protocol
    command; events that arrive meanwhile are kept in ``events``.
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900, timeout: float = 60.0):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError(f"no Chromium found (set ${CHROMIUM_ENV} or install chromium)")
        self.size, self.timeout = (width, height), timeout
        self.events: list[dict] = []
        self._id, self._buffer = 0, b""

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="sparsenb-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def pipes_on_3_and_4():  # the protocol pipe: the browser reads fd 3 and writes fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)
            os.closerange(5, 1 << 16)  # nothing else of ours leaks into the browser

        args = [
            self.executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-extensions", "--no-first-run", "--hide-scrollbars",
            "--mute-audio", f"--user-data-dir={self._profile}", f"--window-size={self.size[0]},{self.size[1]}",
            "--remote-debugging-pipe", "about:blank",
        ]
        self.process = subprocess.Popen(
            args, preexec_fn=pipes_on_3_and_4, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        command = {"id": self._id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, session: str, timeout: float | None = None, count: int = 1) -> dict:
        """The ``count``-th event ``method`` of ``session`` (already received or arriving within ``timeout``)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen, found = 0, 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    found += 1
                    if found == count:
                        return event
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression: str, session: str):
        """The JSON value of a JavaScript expression (awaited if it is a promise)."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True}, session
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")


# Runs in the page once it has loaded: waits for MathJax's first typesetting and for every image.
_INSPECT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  const broken = (await Promise.all(images.map(img =>
      img.decode().then(() => (img.naturalWidth > 0 ? null : img.currentSrc || img.src), () => img.currentSrc || img.src))))
    .filter(src => src !== null);
  const untypeset = [...document.querySelectorAll(".math")]
    .filter(el => !el.querySelector("mjx-container"))
    .map(el => el.textContent.trim().slice(0, 80));
  const walker = document.createTreeWalker(document.body || document.documentElement, NodeFilter.SHOW_TEXT);
  const skip = "SCRIPT, STYLE, CODE, PRE, TEXTAREA, MJX-CONTAINER, MJX-ASSISTIVE-MML, .math, .highlight, .cell_input";  // .math: reported above
  const texLeft = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent && parent.closest(skip)) continue;
    const text = node.textContent;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{/.test(text)) texLeft.push(text.trim().slice(0, 80));
  }
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  const typeset = document.querySelectorAll("mjx-container").length;
  return {broken, untypeset, texLeft, links, typeset, title: document.title};
})()
"""


@dataclass
class PageReport:
    """What one page showed: problems per kind (empty lists when the page is fine), its title and screenshot."""

    page: str
    title: str = ""
    typeset: int = 0  # formulas MathJax typeset
    console_errors: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    def problems(self) -> dict[str, list[str]]:
        kinds = ("console_errors", "raw_tex", "broken_images", "broken_links")
        return {k: getattr(self, k) for k in kinds if getattr(self, k)}

    @property
    def ok(self) -> bool:
        return not self.problems()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


_ID = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
_REFRESH = re.compile(r"""<meta[^>]+http-equiv\s*=\s*["']?refresh""", re.I)


@functools.lru_cache(maxsize=None)
def _anchors(path: Path) -> frozenset[str]:
    return frozenset(_ID.findall(path.read_text(errors="replace")))


def _broken_link(url: str, base: str, folder: Path) -> str | None:
    """Why an internal ``url`` is broken (missing file or anchor), or ``None`` (fine, or not internal)."""
    if not url.startswith(base):
        return None
    parts = urlsplit(url)
    target = folder / unquote(parts.path).lstrip("/")
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"{url}: no such file"
    if parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _anchors(target):
        return f"{url}: no anchor #{parts.fragment}"
    return None


def _console_errors(events: list[dict], session: str) -> list[str]:
    errors = []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            if entry.get("url", "").endswith("/favicon.ico"):  # the browser asks for it by itself; no page loads it
                continue
            errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
    return errors


def check_site(
    folder,
    pages=None,
    screenshots=None,
    screenshot_pages=None,
    executable: str | None = None,
    timeout: float = 60.0,
) -> list[PageReport]:
    """Open ``pages`` (default: every ``.html`` file) of the built site ``folder`` in headless Chromium.

    ``pages`` are paths relative to ``folder``. With ``screenshots`` (a
    folder), keeps a PNG of the first screen of each page in
    ``screenshot_pages`` (default: all checked pages), named after the
    page's file stem. Returns one :class:`PageReport` per page, in order.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"no built site at {folder}")
    pages = [str(p) for p in pages] if pages is not None else sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*.html") if not p.relative_to(folder).parts[0].startswith("_")
    )
    shoot = set(map(str, screenshot_pages)) if screenshot_pages is not None else set(pages)
    if screenshots is not None:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
    server = _serve(folder)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    reports = []
    try:
        with Chromium(executable, timeout=timeout) as browser:
            for page in pages:
                target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
                session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
                for domain in ("Runtime", "Log", "Page"):
                    browser.send(f"{domain}.enable", session=session)
                browser.send("Page.navigate", {"url": base + page}, session)
                browser.wait_for("Page.loadEventFired", session)
                if _REFRESH.search((folder / page).read_text(errors="replace")):  # a redirect: check where it leads
                    browser.wait_for("Page.loadEventFired", session, count=2)
                seen = browser.evaluate(_INSPECT, session)
                report = PageReport(page, title=seen["title"], typeset=seen["typeset"])
                report.console_errors = _console_errors(browser.events, session)
                report.raw_tex = [f"untypeset: {t}" for t in seen["untypeset"]] + [f"in text: {t}" for t in seen["texLeft"]]
                report.broken_images = seen["broken"]
                report.broken_links = sorted({b for u in seen["links"] if (b := _broken_link(u, base, folder))})
                if screenshots is not None and page in shoot:
                    shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)
                    report.screenshot = Path(screenshots) / f"{Path(page).stem}.png"
                    report.screenshot.write_bytes(base64.b64decode(shot["data"]))
                browser.send("Target.closeTarget", {"targetId": target})
                browser.events = [e for e in browser.events if e.get("sessionId") != session]
                reports.append(report)
    finally:
        server.shutdown()
        server.server_close()
    return reports
