"""Helpers of the hostile-input corpus (tests/test_hostile_input.py): the CLI run in-process or as a subprocess."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    def refused(self, *words: str) -> str:
        """Assert a refusal of bad input (status 2, no traceback, every word in the message); return stderr."""
        assert self.code == 2, f"status {self.code}, not 2:\n{self.stdout}\n{self.stderr}"
        assert "Traceback" not in self.stderr, self.stderr
        assert "unexpectedly" not in self.stderr, self.stderr
        for word in words:
            assert word in self.stderr, f"{word!r} not in:\n{self.stderr}"
        return self.stderr


def cli(logs: Path, *args: str, assets: Path | None = None) -> Ran:
    """Run ``python -m rvc --logs-dir LOGS ARGS`` in this process (the same code, without the interpreter's start).

    The assets folder is ``assets`` beside LOGS unless given.
    """
    from rvc.cli import main

    assets = logs.parent / "assets" if assets is None else assets
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--logs-dir", str(logs), "--assets-dir", str(assets), *args])
        except SystemExit as exit:  # argparse refusing a flag's value
            code = int(exit.code or 0)
    return Ran(code, out.getvalue(), err.getvalue())


def cli_process(logs: Path, *args: str, timeout: float = 120) -> Ran:
    """Run ``python -m rvc --logs-dir LOGS ARGS`` as a subprocess: what a user's shell sees."""
    command = [sys.executable, "-m", "rvc", "--logs-dir", str(logs), "--assets-dir", str(logs.parent / "assets")]
    result = subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return Ran(result.returncode, result.stdout, result.stderr)
