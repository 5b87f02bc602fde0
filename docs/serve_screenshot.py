"""Regenerate docs/serve.png: the serve page in headless Chromium, after a translation.

Needs the offline default pair cached (`n2n-hub pair bert vaegan@animals`) and Debian's chromium.

    python docs/serve_screenshot.py
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent / "serve.png"


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "n2n_hub", "serve", "bert-vaegan-animals", "--port", str(port)],
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.goto(url + "/")
            page.wait_for_selector("#pair option", state="attached")
            page.fill("#texts", "a photo of a zebra\nan elephant\na bird")
            page.fill("#n", "8")
            page.fill("#seed", "0")
            page.click("#go")
            page.wait_for_selector("#grid[src^='data:image/png']", timeout=60_000)
            page.screenshot(path=str(OUT), full_page=True)
            browser.close()
        print(f"wrote {OUT}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


if __name__ == "__main__":
    main()
