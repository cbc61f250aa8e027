"""Start the RVC Studio web app: ``python app.py [--host H] [--port P] [--share] [--auth USER:PASS] ...``.

Settings come from ``<logs-dir>/../rvc_studio_settings.json`` (or ``--settings FILE``);
flags given here win over the file. Training runs keep going when the app
exits: the next start re-attaches to them.
"""

from __future__ import annotations

import argparse
import atexit
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

APP_ROOT = Path(__file__).resolve().parent

SHARE_WITHOUT_AUTH = """
WARNING: --share opens a public gradio.live link and no --auth is set.
Anyone with the link can use this app: read your experiments, start training, download models.
Set a login: python app.py --share --auth USER:PASS (or in the Settings tab, for the next start).
"""
SHARE_REFUSED = """error: --share (or 'share' in the settings) opens a public gradio.live link, and no login is set:
anyone with the link could use this app: read your experiments, start training, download models.
Set a login: python app.py --share --auth USER:PASS (or in the Settings tab), or, if that is really
meant, add --share-without-auth.
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="RVC Studio web app. Unset options come from the settings file, then from the defaults.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--share", action="store_true", default=None, help="also open a public gradio.live link")
    parser.add_argument("--auth", default=None, metavar="USER:PASS", help="ask every page for this login")
    parser.add_argument(
        "--share-without-auth", action="store_true", help="allow --share without --auth: anyone with the link gets in"
    )
    parser.add_argument("--logs-dir", type=Path, default=None, help="experiments folder (default: ./logs)")
    parser.add_argument("--assets-dir", type=Path, default=None, help="weights folder (default: ./assets)")
    parser.add_argument(
        "--settings", type=Path, default=None, help="settings file (default: rvc_studio_settings.json beside logs)"
    )
    # tests and debug runs: Train from recordings trains the tiny model (`python -m rvc run --tiny-model`)
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt: Gradio then closes cleanly and the atexit handlers run."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from rvc.errors import UserError
    from rvc.experiment import Workspace
    from rvc.fileio import make_folder
    from webui.settings import Settings, load_settings, resolve_folder, settings_path

    settings_file = (args.settings or settings_path(args.logs_dir or APP_ROOT / "logs")).resolve()
    try:
        settings = load_settings(settings_file)
        if args.auth is not None:
            Settings(auth=args.auth).validate()
        # A hand-edited file's folder may name a home this machine lacks (~nosuchuser/logs): said, not raised.
        logs_dir = args.logs_dir.resolve() if args.logs_dir else resolve_folder(settings_file, settings.logs_dir)
        assets_dir = (
            args.assets_dir.resolve() if args.assets_dir else resolve_folder(settings_file, settings.assets_dir)
        )
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    overrides = {
        key: flag
        for key, flag, value in (
            ("logs_dir", "--logs-dir", args.logs_dir),
            ("assets_dir", "--assets-dir", args.assets_dir),
            ("share", "--share", args.share),
            ("auth", "--auth", args.auth),
        )
        if value is not None
    }
    share = bool(args.share) if args.share is not None else settings.share
    auth_text = args.auth if args.auth is not None else settings.auth
    auth = tuple(auth_text.split(":", 1)) if auth_text else None
    if share and auth is None:
        if not args.share_without_auth:
            print(SHARE_REFUSED, file=sys.stderr, flush=True)
            return 2
        print(SHARE_WITHOUT_AUTH, file=sys.stderr, flush=True)

    from webui import CSS, build_ui, make_theme
    from webui.context import AppContext

    try:
        for folder in (logs_dir, assets_dir):
            make_folder(folder)
    except UserError as error:  # a file where a folder goes
        print(f"error: {error}", file=sys.stderr)
        return 2
    ctx = AppContext.create(Workspace(logs_dir, assets_dir), settings, settings_file, overrides)
    ctx.tiny_model = args.tiny_model
    atexit.register(ctx.tensorboard.stop)
    _stop_on_sigterm()
    app = build_ui(ctx)
    print(f"RVC Studio: experiments in {logs_dir}, weights in {assets_dir}, settings in {settings_file}", flush=True)
    app.launch(
        server_name=args.host,
        server_port=args.port,
        share=share,
        auth=auth,
        theme=make_theme(settings.theme),
        css=CSS,
        footer_links=[],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
