"""``python -m rvc <stage>``: the command line of RVC Studio."""

from rvc.cli import main
from rvc.train.__main__ import exit_process

if __name__ == "__main__":
    exit_process(main())  # a training stage may leave a background compile running: see there
