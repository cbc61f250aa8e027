"""Publish a finished voice model to the Hugging Face Hub: the model files and a model card, in one commit.

``publish/`` in the experiment folder is laid out as the repository will be: the exported model,
its index and its ONNX graph (hard links where the filesystem allows, else copies), the card
(``README.md``), the loss plot and, when asked for, a sample. ``huggingface_hub`` then creates
the repository (``create_repo``, an existing one is reused) and uploads that folder
(``upload_folder``). The token comes from where huggingface_hub looks: ``HF_TOKEN``, or the one
``hf auth login`` (``huggingface-cli login``) saved; the Hub's address from ``HF_ENDPOINT``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rvc.errors import UserError
from rvc.experiment import Experiment, Workspace
from rvc.experiment.names import LOSS_PLOT, MODEL_CARD, VOICE_SAMPLE
from rvc.jobs.reporter import Bar, Reporter

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
LOGIN = "run `hf auth login` (or `huggingface-cli login`) with a token that may write, or set HF_TOKEN"


@dataclass(frozen=True)
class Published:
    """What a publish did: where the model is, and what it uploaded."""

    url: str  # the repository's page
    commit: str  # the commit's address on the Hub
    files: list[str]  # the uploaded files' names


def validate_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` if it reads USER/NAME (or ORG/NAME), else raise UserError."""
    if not _REPO_ID.fullmatch(repo_id or "") or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise UserError(
            f"invalid Hugging Face repository {repo_id!r}: write it as USER/NAME (or ORG/NAME), "
            "with letters, digits, '-', '_' and '.', e.g. 'me/my-voice-rvc'"
        )
    return repo_id


def _model_files(experiment: Experiment, without_index: bool) -> list[Path]:
    """Return the files to upload beside the card, refusing what is missing by name."""
    model = experiment.exported_model()
    if not model.is_file():
        raise UserError(
            f"{experiment.name} has no exported model ({model.name}): export it first "
            f"(python -m rvc export --experiment {experiment.name}, or Export in the Train tab)"
        )
    files = [model]
    index = experiment.index_file
    if not without_index:  # the flag leaves it out also where there is one (one that would not load, say)
        if not index.is_file():
            raise UserError(
                f"{experiment.name} has no index ({index.name}): build it first (python -m rvc index --experiment "
                f"{experiment.name}, or Build index in the Train tab), or publish without one (--without-index)"
            )
        files.append(index)
    if experiment.onnx_model.is_file():
        files.append(experiment.onnx_model)
    return files


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # no second copy of a 55 MB model and a larger index
    except OSError:  # another filesystem, or one without hard links
        shutil.copy2(source, target)


def stage_folder(
    workspace: Workspace, experiment: Experiment, without_index: bool, with_sample: bool, reporter: Reporter
) -> Path:
    """Lay out ``publish/`` as the repository will be: the model files, the card, the plot (and sample); return it."""
    from rvc.export import read_exported
    from rvc.infer.retrieval import check_index_file
    from rvc.model_card import card_text, gather_facts, write_loss_plot, write_sample
    from rvc.train.run_state import read_run

    files = _model_files(experiment, without_index)
    model = read_exported(files[0])
    if experiment.index_file in files:  # what a user downloads must load beside the model
        check_index_file(experiment.index_file, model.config.phone_channels, files[0])
    folder = experiment.publish_dir
    if folder.exists():
        shutil.rmtree(folder)  # what the last publish uploaded: this one starts clean
    folder.mkdir(parents=True)
    for path in files:
        _link_or_copy(path, folder / path.name)
    run = read_run(experiment.progress_jsonl)
    facts = gather_facts(workspace, experiment, model, run)
    plot = write_loss_plot(run, folder / LOSS_PLOT)
    if not plot:
        reporter.log("no training events recorded: the card has no loss plot")
    sample = with_sample and write_sample(experiment, model, folder / VOICE_SAMPLE)
    if with_sample and not sample:
        reporter.log("no clip with stored features to render: the card has no sample")
    sizes = {path.name: path.stat().st_size for path in files}
    card = card_text(dataclasses.replace(facts, files=sizes, plot=plot, sample=sample))
    (folder / MODEL_CARD).write_text(card, encoding="utf-8")
    return folder


def _hub_error(error: Exception, repo_id: str, endpoint: str) -> UserError:
    """Turn a huggingface_hub or network exception into a message that says what to do."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, OfflineModeIsEnabled):
        return UserError("offline mode is on (HF_HUB_OFFLINE): unset it to publish, then try again")
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        status = error.response.status_code
        if status == 401:
            return UserError(f"the Hub at {endpoint} refused the token (401 unauthorised): {LOGIN}")
        if status in (403, 404):
            return UserError(
                f"the token may not write to {repo_id} ({status}): use a token with write access to that "
                f"user or organisation, or publish under your own name; {LOGIN}"
            )
        return UserError(f"the Hub at {endpoint} refused the upload to {repo_id} ({status}: {detail})")
    return UserError(
        f"the Hub at {endpoint} could not be reached ({type(error).__name__}: {detail}): check the internet "
        "connection (or HF_ENDPOINT) and publish again; the files are ready in the experiment's publish folder"
    )


def publish(
    workspace: Workspace,
    experiment: Experiment,
    repo_id: str,
    reporter: Reporter,
    *,
    private: bool = False,
    with_sample: bool = False,
    without_index: bool = False,
) -> Published:
    """Upload the experiment's model, index, ONNX graph (if any) and model card to ``repo_id``; return where."""
    from huggingface_hub import get_token

    validate_repo_id(repo_id)
    token = get_token()
    if not token:
        raise UserError(f"no Hugging Face token found: {LOGIN}")
    _model_files(experiment, without_index)  # what is missing is said before any work
    bar = reporter.bar("publish", 3, "step")  # the card, the repository, the upload
    try:
        folder = stage_folder(workspace, experiment, without_index, with_sample, reporter)
        bar.update()
        return _upload(
            folder, repo_id, token, private, f"{experiment.name}: voice model and card from RVC Studio", reporter, bar
        )
    finally:
        bar.close()  # on the command line, a failure's message then starts a line of its own


def _upload(
    folder: Path, repo_id: str, token: str, private: bool, message: str, reporter: Reporter, bar: Bar
) -> Published:
    """Create the repository (or reuse it) and upload ``folder`` in one commit, ticking ``bar`` twice."""
    from huggingface_hub import HfApi

    from rvc.pretrained.download import hub_endpoint

    names = sorted(path.name for path in folder.iterdir())
    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        reporter.log(f"repository {url} ready ({'private' if private else 'public'})")
        bar.update()
        reporter.log(f"uploading {', '.join(names)}")
        commit = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="model", commit_message=message)
    except Exception as error:  # network errors come from httpx, Hub errors from huggingface_hub
        raise _hub_error(error, repo_id, endpoint) from None
    bar.update()
    return Published(url=str(url), commit=str(commit.commit_url), files=names)
