"""Only rvc/experiment/ spells the experiment folder's file names: everyone else asks Experiment for
a path, so the folder's layout can change in one place.

The source trees are read as Python and every string literal is checked (f-strings' literal parts,
error messages, help texts and labels too: they take the names from ``rvc.experiment.names``);
comments and docstrings are not, since they document a file rather than find it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWNER = REPO / "rvc" / "experiment"

# A name of the folder's files, as it would appear in a string: a file, a pattern or a stem.
FOLDER_NAMES = re.compile(
    r"dataset\.json|features\.json|progress\.jsonl|config\.json"
    r"|(?<![a-z_])\.index\b"  # NAME.index, *.index, f"{name}.index"; not a module path (rvc.cli.index)
    r"|\b(?:G|D|state)_(?=[\d*{<]|best|$)"  # G_<step>.pth, G_*.pth, f"G_{tag}", state_best.pt
)

# Files that spell a name for something that is not the experiment folder's, and why.
NOT_THE_FOLDER = {
    # A Hugging Face model folder's config.json (the content encoders), not the experiment's settings.
    ("rvc/features/embedder_sources.py", "config.json"),
    ("rvc/features/embedder_weights.py", "config.json"),
    ("rvc/pretrained/download.py", "config.json"),
}


def _sources() -> list[Path]:
    trees = [REPO / "rvc", REPO / "webui"]
    files = [path for tree in trees for path in sorted(tree.rglob("*.py")) if OWNER not in path.parents]
    return [*files, REPO / "app.py"]


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the module's, classes' and functions' docstring constants."""
    owners = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, owners)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string constant of a module but its docstrings (f-strings' literal parts included), with its line.

    Docstrings may say what a file is called: they document it, they do not find it.
    """
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
    ]


def test_no_module_outside_rvc_experiment_spells_a_file_of_the_folder() -> None:
    found = []
    for path in _sources():
        relative = str(path.relative_to(REPO))
        for line, text in _strings(ast.parse(path.read_text(encoding="utf-8"))):
            for match in FOLDER_NAMES.finditer(text):
                if (relative, match.group()) not in NOT_THE_FOLDER:
                    found.append(f"{relative}:{line}: {match.group()!r} in {text.strip()[:80]!r}")
    assert not found, "ask rvc.experiment for these paths instead:\n" + "\n".join(found)


def test_the_check_sees_what_it_is_meant_to() -> None:
    source = (
        'def f():\n    """Reads dataset.json."""\n'
        '    return root / "dataset.json", f"G_{tag}.pth", ".index", self.index'
    )
    hits = [m.group() for _, text in _strings(ast.parse(source)) for m in FOLDER_NAMES.finditer(text)]
    assert sorted(hits) == [".index", "G_", "dataset.json"]
