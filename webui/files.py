"""Hand single files to Gradio without opening the logs folder to it."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def servable(path: Path) -> str:
    """Return a hard link (or copy) of ``path`` in the temp folder, where Gradio may serve it from.

    Gradio serves only files under its allowed folders; linking one file at a time
    keeps the rest of the logs folder private.
    """
    folder = Path(tempfile.gettempdir()) / "rvc_studio_downloads" / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    staging = folder / f".{path.name}.tmp"
    staging.unlink(missing_ok=True)
    try:
        os.link(path, staging)
    except OSError:  # another file system: copy
        shutil.copyfile(path, staging)
    os.replace(staging, target)
    return str(target)
