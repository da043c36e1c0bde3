"""Checks on a rendered report page shared by the report tests (fast: synthetic; slow: a real reproduction)."""

from __future__ import annotations

import base64
import glob
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np


class Page(HTMLParser):
    """Tags, balance, headings and what follows them, images, links and tables of an HTML page."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "wbr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.events: list[tuple[str, str]] = []  # ("start"/"end", tag) or ("data", text)
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self.events.append(("start", tag))
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "img":
            self.events.append(("data", "<img>"))
        if tag == "table":
            self.tables.append({"class": attrs.get("class", ""), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        self.events.append(("end", tag))
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        self.events.append(("data", data))
        if self._cell is not None:
            self._cell.append(data)

    def headings(self) -> list[tuple[str, str, bool]]:
        """(tag, text, followed by content before the next heading) for every h1-h4 in <body>."""
        out, i, ev = [], 0, self.events
        levels = ("h1", "h2", "h3", "h4")
        while i < len(ev):
            if ev[i] == ("start", ev[i][1]) and ev[i][1] in levels:
                tag, j, text = ev[i][1], i + 1, []
                while ev[j] != ("end", tag):
                    if ev[j][0] == "data":
                        text.append(ev[j][1])
                    j += 1
                k, content = j + 1, False
                while k < len(ev) and not (ev[k][0] == "start" and ev[k][1] in levels) and ev[k] != ("end", "main"):
                    content = content or (ev[k][0] == "data" and ev[k][1].strip() != "")
                    k += 1
                out.append((tag, " ".join("".join(text).split()), content))
                i = j
            i += 1
        return out

    def verdict_rows(self) -> dict[str, str]:
        (table,) = [t for t in self.tables if "verdicts" in t["class"].split()]
        header, *rows = table["rows"]
        assert header == ["Claim", "Statement", "Verdict", "Reason"]
        return {row[0]: row[2] for row in rows}


def check_self_contained(page: Page) -> None:
    """No external source or link, no script: the page opens from disk with no network."""
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            val = (attrs.get(key) or "").strip().lower()
            assert not val.startswith(("http:", "https:", "//", "file:")), (tag, key, val[:60])
            if key == "href" and val:
                assert val.startswith("#"), val  # only links within the page
        assert tag not in ("script", "link", "iframe", "object"), tag


def embedded_pngs(page: Page) -> list[np.ndarray]:
    """The pixels of every <img>, each required to be a base64 PNG data URI."""
    import matplotlib.image as mpimg

    out = []
    for tag, attrs in page.tags:
        if tag != "img":
            continue
        prefix = "data:image/png;base64,"
        src = attrs["src"]
        assert src.startswith(prefix), src[:40]
        data = base64.b64decode(src[len(prefix):], validate=True)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        out.append(mpimg.imread(io.BytesIO(data), format="png"))
    return out


def find_browser() -> str | None:
    """Debian's chromium-headless-shell, on PATH or in its library folder; None when not installed."""
    found = shutil.which("chromium-headless-shell")
    if found:
        return found
    hits = sorted(glob.glob("/usr/lib/chromium*/chromium-headless-shell"))
    return hits[0] if hits else None


BROWSER_MISSING = ("chromium-headless-shell not found (apt-get install -y --no-install-recommends "
                   "chromium-headless-shell)")


def screenshot(browser: str, html: Path, shot: Path, *, width: int = 1000, height: int = 1400) -> np.ndarray:
    """Open ``html`` from disk in the headless browser and return the screenshot's RGB pixels (0-255)."""
    import matplotlib.image as mpimg

    proc = subprocess.run(
        [browser, "--no-sandbox", "--disable-gpu", f"--user-data-dir={shot.parent / 'profile'}", "--hide-scrollbars",
         f"--window-size={width},{height}", f"--screenshot={shot}", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, cwd=shot.parent)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    return np.round(mpimg.imread(shot, format="png")[..., :3] * 255).astype(np.uint8)


def colour_mask(rgb: np.ndarray, hex_colour: str, tol: int = 3) -> np.ndarray:
    """Pixels within ``tol`` of ``#rrggbb``."""
    want = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return (np.abs(rgb.astype(int) - want) <= tol).all(axis=-1)
