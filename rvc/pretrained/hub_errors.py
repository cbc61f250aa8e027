"""The Hub's failures in words a user can act on: what went wrong, and what to do by hand."""

from __future__ import annotations

from rvc.errors import UserError
from rvc.pretrained.catalogue import RemoteFile


class DownloadError(UserError):
    """A file could not be fetched (offline, not on the Hub); the message says what to fetch and where to put it."""


class ChecksumError(UserError):
    """A downloaded file is not the file the catalogue (or the Hub) promised; it was deleted."""


def transient(error: Exception) -> bool:
    """Whether asking again may help: a network failure or a busy Hub, not a missing, gated or offline file."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return False
    if isinstance(error, HfHubHTTPError):
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
        return status is None or status >= 500 or status == 429
    return True


def first_line(error: Exception) -> str:
    """Return the exception's kind and the first line of its message."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def download_error(remote: RemoteFile, endpoint: str, error: Exception, hint: str, attempts: int = 1) -> UserError:
    """Turn a huggingface_hub / network exception into a message that says what to do (``hint``: by hand)."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, GatedRepoError):
        return DownloadError(
            f"{remote.repo_id} is gated: accept its terms on {remote.page} and log in with `hf auth login`, "
            f"then try again, or {hint}"
        )
    if isinstance(error, RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError):
        return DownloadError(
            f"{remote.filename} is not in the Hugging Face repository {remote.repo_id} (revision {remote.revision}) "
            f"at {endpoint}: it may have been moved or deleted. Find it on the author's page and update the "
            f"catalogue, or {hint} ({detail})"
        )
    if isinstance(error, OfflineModeIsEnabled):
        return DownloadError(f"offline mode is on (HF_HUB_OFFLINE), so nothing was downloaded. {capital(hint)}")
    tried = f" in {attempts} attempts" if attempts > 1 else ""
    return DownloadError(
        f"could not download {remote.filename} from the Hugging Face repository {remote.repo_id}: the Hub at "
        f"{endpoint} could not be reached{tried} ({type(error).__name__}: {detail}). Check the internet connection "
        f"(or HF_ENDPOINT) and try again, or {hint}"
    )


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]
