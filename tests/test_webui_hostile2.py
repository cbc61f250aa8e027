"""The web app's handlers fed careless or hostile input, a second sweep (the first is test_webui_hostile.py):
the Train tab's GPU ids, Settings, Try Model's encoder, Model tools' blend, the pretrain lists and paths that
name another user's home. Each case ends in a message naming the field and what to do, never a traceback, and
a refused request leaves nothing on disk.

The handlers are called directly, as the tabs call them (no browser).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rvc.errors import UserError
from rvc.experiment import Workspace
from webui.context import AppContext
from webui.settings import Settings


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.create(Workspace(tmp_path / "logs", tmp_path / "assets"), Settings(), tmp_path / "settings.json")


# ------------------------------------------------------------------ a path naming the home of no user


def test_a_path_beginning_with_the_home_of_no_user_is_said_by_field(ctx: AppContext, tmp_path: Path) -> None:
    """'~nosuchuser/x' in any path field ended in Path.expanduser's RuntimeError 'Could not determine home
    directory.': a traceback from Prepare's and Train from recordings' folders, Convert folder's folders and
    Settings' folders; Try Model's index said 'conversion failed (RuntimeError ...)'."""
    from webui import one_click
    from webui.tabs import settings as settings_tab

    form = {"experiment": "voice", "folders": "~nosuchuser/recordings", "sample_rate": 40000, "f0_method": "pm"}
    form |= {"embedder": "contentvec", "pretrain": one_click.NO_PRETRAIN}
    words = r"'~nosuchuser/recordings' begins with ~nosuchuser, the home folder of a user this machine does not have"
    with pytest.raises(UserError, match=f"^'Folder\\(s\\) of recordings on the server': {words}"):
        one_click.chain_request(ctx, form)
    with pytest.raises(UserError, match="write the full path"):
        ctx.paths.resolve("~nosuchuser/out", "'Output folder'")
    values = [getattr(ctx.settings, name) for name in settings_tab.FIELD_ORDER]
    values[settings_tab.FIELD_ORDER.index("logs_dir")] = "~nosuchuser/logs"
    message = settings_tab.save(ctx, *values, False)[0]
    assert message.startswith("Not saved.") and "~nosuchuser, the home folder of a user" in message, message
    assert not ctx.settings_path.exists() and not ctx.workspace.logs_dir.exists()
