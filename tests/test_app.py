"""The web app starts on the port it is given and serves its page."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.browser import start_app, stop_app


def test_app_starts_and_serves_the_page(tmp_path: Path) -> None:
    app = start_app(tmp_path, timeout=120)
    try:
        with urllib.request.urlopen(app.url, timeout=5) as response:
            page = response.read().decode()
        assert app.process.poll() is None, app.output()
        assert "RVC Studio" in page
    finally:
        stop_app(app)
