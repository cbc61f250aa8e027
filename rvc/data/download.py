"""``--url``: fetch media through yt-dlp (an optional dependency) into the experiment's downloads folder.

The files are then prepared like any other input. yt-dlp keeps an archive of
what it fetched, so a re-run with the same links downloads nothing again. No
conversion happens here: the prepare stage decodes whatever format arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rvc.errors import UserError

log = logging.getLogger(__name__)

ARCHIVE_NAME = ".downloaded.txt"  # hidden, so the input scan does not list it as "not audio"
LINK_SCHEMES = ("https://", "http://")  # yt-dlp refuses file:// itself; anything else is not a page to fetch


def check_link(text: str) -> str:
    """Return ``text`` stripped when it is a web link; raise a UserError naming it otherwise.

    A line of the web form's links becomes a ``--url`` value of the prepare job's command line:
    one that began with ``-`` would be read as a flag there (``--input=/elsewhere``).
    """
    link = text.strip()
    if not link.lower().startswith(LINK_SCHEMES) or any(c.isspace() for c in link):
        raise UserError(f"{text!r} is not a link: give a web address beginning with https://")
    return link


class _Logger:
    """Route yt-dlp's messages to logging (its own prints would mix with our progress)."""

    def debug(self, message: str) -> None:
        if message.startswith("[download] Destination") or "has already been" in message:
            log.info("%s", message)

    def info(self, message: str) -> None:
        log.info("%s", message)

    def warning(self, message: str) -> None:
        log.warning("%s", message)

    def error(self, message: str) -> None:
        log.debug("%s", message)  # the same text reaches us as DownloadError and is reported there


def download_urls(urls: Sequence[str], folder: Path) -> list[tuple[str, str]]:
    """Download each URL's best audio (or whole media) into ``folder``; return ``(url, reason)`` failures.

    Raises UserError when yt-dlp is not installed. A URL that fails is
    returned, not raised, so the other links and files still get prepared.
    """
    try:
        import yt_dlp
    except ImportError:
        raise UserError("--url needs yt-dlp, which is not installed: pip install yt-dlp") from None
    folder.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "format": "bestaudio/best",
        "outtmpl": str(folder / "%(title).80B-%(id).40B.%(ext)s"),
        "restrictfilenames": True,  # ASCII names without spaces: they end up in clip names
        "windowsfilenames": True,
        "download_archive": str(folder / ARCHIVE_NAME),
        "overwrites": False,
        "retries": 3,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        "logger": _Logger(),
    }
    failures: list[tuple[str, str]] = []
    with yt_dlp.YoutubeDL(options) as downloader:
        for url in urls:
            log.info("downloading %s", url)
            try:
                if downloader.download([url]) != 0:
                    failures.append((url, "download failed (yt-dlp reported an error)"))
            except yt_dlp.utils.DownloadError as error:
                failures.append((url, f"download failed: {_clean(str(error))}"))
    return failures


def _clean(message: str) -> str:
    return message.removeprefix("ERROR: ").strip()
