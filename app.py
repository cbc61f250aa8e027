"""Start the RVC Studio web app: ``python app.py [--host H] [--port P] [--share] ...``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="RVC Studio web app", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link (Colab)")
    parser.add_argument("--auth", default=None, metavar="USER:PASS", help="ask for this user name and password")
    parser.add_argument("--logs-dir", type=Path, default=Path(__file__).parent / "logs", help="experiments folder")
    parser.add_argument("--assets-dir", type=Path, default=Path(__file__).parent / "assets", help="weights folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from rvc.paths import Workspace
    from webui import build_ui

    workspace = Workspace(logs_dir=args.logs_dir.resolve(), assets_dir=args.assets_dir.resolve())
    auth = tuple(args.auth.split(":", 1)) if args.auth else None
    build_ui(workspace).launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth)


if __name__ == "__main__":
    main()
