"""``python -m rvc <stage>``: the command line of RVC Studio."""

from rvc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
