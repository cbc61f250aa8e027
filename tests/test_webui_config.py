"""Generate Configuration tab handlers: every field round-trips, validate/save/import, the pretrain dropdowns."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from rvc.config.train import TrainConfig
from rvc.errors import UserError
from rvc.experiment import Workspace
from rvc.experiment.config_file import load_config
from rvc.models.config import ModelConfig
from rvc.pretrained.pairs import find_pretrain_pairs, rate_from_name
from tests.fake_experiment import make_extracted_experiment, write_tiny_config
from webui import config_handlers as handlers
from webui import config_pretrains
from webui.config_pretrains import NO_PRETRAIN, pairs_for_rate
from webui.paths_guard import PathGuard


def _workspace(tmp_path: Path) -> tuple[Workspace, PathGuard]:
    workspace = Workspace(tmp_path / "logs", tmp_path / "assets")
    return workspace, PathGuard(tmp_path, (workspace.logs_dir, workspace.assets_dir))


def _save_pretrain(path: Path, sample_rate: int, generator: bool) -> Path:
    """Save a tiny random G or D in RVC's checkpoint format (the real layout, small channels)."""
    from rvc.models.discriminator import MultiPeriodDiscriminatorV2
    from rvc.models.synthesizer import SynthesizerTrnMs768NSFsid

    config = ModelConfig.tiny(sample_rate)
    torch.manual_seed(0)
    model = (
        SynthesizerTrnMs768NSFsid(config)
        if generator
        else MultiPeriodDiscriminatorV2(divisor=config.discriminator_divisor)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "iteration": 0, "optimizer": {}, "learning_rate": 1e-4}, path)
    return path


def _pair(folder: Path, g_name: str, d_name: str, sample_rate: int) -> tuple[Path, Path]:
    return _save_pretrain(folder / g_name, sample_rate, True), _save_pretrain(folder / d_name, sample_rate, False)


def test_every_train_config_field_is_in_the_form_once_with_its_help() -> None:
    names = [field.name for field in dataclasses.fields(TrainConfig)]
    placed = [spec.name for _, specs in handlers.sections() for spec in specs] + list(handlers.PRETRAIN_FIELDS)
    assert sorted(placed) == sorted(names)
    for spec in handlers.field_specs():
        field = next(f for f in dataclasses.fields(TrainConfig) if f.name == spec.name)
        assert spec.help == field.metadata["help"] and spec.help
    assert {s.name: s.kind for s in handlers.field_specs()}["lr_scheme"] == "choice"


def test_form_values_round_trip_to_the_train_config(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    g = workspace.assets.pretrained_dir / "f0G40k.pth"
    train = TrainConfig(
        epochs=321,
        batch_size=6,
        lr=2.5e-4,
        betas=(0.7, 0.95),
        eps=1e-8,
        lr_scheme="multistep",
        lr_milestones=[50, 100],
        grad_accum=2,
        grad_clip=5.0,
        multiscale_mel=True,
        precision="fp32",
        tf32=False,
        pretrained_g=str(g),
        pretrained_d=str(g.with_name("f0D40k.pth")),
        auto_stop=True,
        log_every_seconds=2.5,
    )
    form = handlers.form_from_train(train)
    assert form["betas"] == "0.7, 0.95" and form["lr_milestones"] == "50, 100"
    assert handlers.train_from_form(form, guard) == train
    # the widgets' empty values: no clipping, no pretrain
    form |= {"grad_clip": None, "pretrained_g": NO_PRETRAIN, "pretrained_d": NO_PRETRAIN}
    parsed = handlers.train_from_form(form, guard)
    assert parsed.grad_clip is None and parsed.pretrained_g is None and parsed.pretrained_d is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 2.5}, "'Epochs': enter a whole number"),
        ({"lr": None}, "'Learning rate': enter a number"),
        ({"betas": "0.8"}, "'AdamW betas': give two numbers"),
        ({"lr_milestones": "ten, 20"}, "'LR milestones, epochs (multistep)': 'ten, 20' is not a list"),
        ({"lr_scheme": "linear"}, "'LR schedule': 'linear' is not one of exponential"),
        ({"pretrained_g": "/etc/passwd"}, "outside the folders this app may use"),
    ],
)
def test_bad_form_values_name_the_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    _, guard = _workspace(tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        handlers.train_from_form(handlers.form_from_train(TrainConfig()) | change, guard)


def test_suggested_settings_then_save_then_load(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    make_extracted_experiment(workspace.logs_dir, "voice", sample_rate=48000)
    assert handlers.list_experiments(workspace) == ["voice"]

    loaded = handlers.load_form(workspace, "voice", default_precision="fp32")
    assert loaded.sample_rate == 48000  # the dataset's rate picks the preset
    assert loaded.values["batch_size"] == "auto"  # the trainer measures what fits when it starts
    assert loaded.values["precision"] == "fp32"  # the app's default precision setting
    assert "Suggested settings" in loaded.message and "6 training and 2 validation clips" in loaded.message

    report = handlers.validate_form(workspace, guard, "voice", 48000, loaded.values | {"epochs": 77})
    assert report.startswith("**No errors.**") and "GPU memory: about" in report and "no pretrain" in report
    assert "(weights and optimizer" in report  # what the estimate is made of
    assert "- Batch size auto: about 4 (the dataset's" in report  # a few seconds of audio: the smallest suggestion
    saved = handlers.save_form(workspace, guard, "voice", 48000, loaded.values | {"epochs": 77})
    assert saved.startswith("**Saved**")
    config = load_config(workspace.experiment("voice"))
    assert config.train.epochs == 77 and config.model == ModelConfig.for_sample_rate(48000)
    assert config.data.train_clips == 6 and config.data.sample_rate == 48000

    again = handlers.load_form(workspace, "voice")
    assert again.values["epochs"] == 77 and again.message.startswith("Loaded the saved settings")
    assert handlers.suggested_form(workspace, "voice").values["epochs"] == TrainConfig().epochs


def test_validate_names_a_pretrain_of_another_rate_and_save_refuses_it(tmp_path: Path) -> None:
    workspace, guard = _workspace(tmp_path)
    experiment = make_extracted_experiment(workspace.logs_dir, "voice")
    tiny = write_tiny_config(experiment, epochs=3).model  # a tiny 40k model: the saved shape is kept at 40k
    g48, d48 = _pair(workspace.assets.pretrained_dir, "f0G48k.pth", "f0D48k.pth", 48000)
    form = handlers.load_form(workspace, "voice").values | {"pretrained_g": str(g48), "pretrained_d": str(d48)}

    report = handlers.validate_form(workspace, guard, "voice", 40000, form)
    assert report.startswith("**Errors: training would not start")
    assert "the file is a 48k v2 model (48000 Hz) but the model is 40k" in report
    before = experiment.config_json.read_bytes()
    saved = handlers.save_form(workspace, guard, "voice", 40000, form)
    assert saved.startswith("**Not saved: fix these errors first.**")
    assert experiment.config_json.read_bytes() == before

    g40, d40 = _pair(workspace.assets.pretrained_dir, "f0G40k.pth", "f0D40k.pth", 40000)
    fits = form | {"pretrained_g": str(g40), "pretrained_d": str(d40)}
    assert handlers.validate_form(workspace, guard, "voice", 40000, fits).startswith("**No errors.**")
    assert handlers.save_form(workspace, guard, "voice", 40000, fits).startswith("**Saved**")
    saved_config = load_config(experiment)
    assert saved_config.model == tiny and saved_config.train.pretrained_g == str(g40)


def test_import_takes_another_experiments_settings(tmp_path: Path) -> None:
    workspace, _ = _workspace(tmp_path)
    source = make_extracted_experiment(workspace.logs_dir, "old-voice")
    write_tiny_config(source, epochs=123, batch_size=3, lr_scheme="cosine")
    make_extracted_experiment(workspace.logs_dir, "new-voice", train_clips=4, validation_clips=1)
    assert handlers.list_experiments(workspace) == ["new-voice", "old-voice"]

    imported = handlers.import_form(workspace, "new-voice", "old-voice")
    assert imported.values["epochs"] == 123 and imported.values["lr_scheme"] == "cosine"
    assert "Imported the settings of 'old-voice'" in imported.message and "4 training" in imported.message
    assert not workspace.experiment("new-voice").config_json.exists()  # nothing saved until Save
    with pytest.raises(UserError, match="'new-voice' has no saved configuration"):
        handlers.import_form(workspace, "old-voice", "new-voice")


def test_pretrain_dropdowns_list_pairs_of_the_chosen_rate(tmp_path: Path) -> None:
    workspace, _ = _workspace(tmp_path)
    root = workspace.assets.pretrained_dir
    g40, d40 = _pair(root, "f0G40k.pth", "f0D40k.pth", 40000)
    g48, _ = _pair(root, "f0G48k.pth", "f0D48k.pth", 48000)
    titan_g, titan_d = _pair(root / "TITAN" / "32k", "G-f032k-TITAN-Medium.pth", "D-f032k-TITAN-Medium.pth", 32000)
    custom_g, custom_d = _pair(root / "custom", "G.pth", "D.pth", 40000)  # no tag: the decoder's shapes tell
    _save_pretrain(root / "lonely_G40k.pth", 40000, True)
    for name in ("G.pth", "D.pth"):  # untagged and unreadable: listed nowhere, counted in the note
        (root / "broken" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "broken" / name).write_bytes(b"not a torch file")

    listing = find_pretrain_pairs(root)
    assert {(p.name, p.g.name, p.sample_rate, p.rate_from, p.origin) for p in listing.pairs} == {
        ("f0G40k", "f0G40k.pth", 40000, "name", "folder"),
        ("f0G48k", "f0G48k.pth", 48000, "name", "folder"),
        ("G-f032k-TITAN-Medium", "G-f032k-TITAN-Medium.pth", 32000, "name", "folder"),
        ("custom", "G.pth", 40000, "weights", "folder"),
    }
    assert [(g.parent.name, g.name) for g, _ in listing.unknown_rate] == [("broken", "G.pth")]
    assert [p.name for p in listing.unpaired] == ["lonely_G40k.pth"]
    assert [p.g for p in pairs_for_rate(listing, 32000)] == [titan_g]

    choices = config_pretrains.pretrain_choices(workspace, 40000, None, None)
    assert choices.generators == [
        ("none: train from scratch", NO_PRETRAIN),
        ("custom/G.pth", str(custom_g)),
        ("f0G40k.pth", str(g40)),
    ]
    assert [value for _, value in choices.discriminators] == [NO_PRETRAIN, str(custom_d), str(d40)]
    assert (choices.generator, choices.discriminator) == (NO_PRETRAIN, NO_PRETRAIN)
    assert "2 40k pair(s)" in choices.note and "2 pair(s) of other sample rates hidden" in choices.note
    assert "1 file(s) without a G/D partner" in choices.note and "1 pair(s) of unknown rate hidden" in choices.note

    # a listed pretrain of another rate is dropped; a path that is no listed pretrain stays
    own_state = str(workspace.logs_dir / "other" / "checkpoints" / "G_100.pth")
    kept = config_pretrains.pretrain_choices(workspace, 40000, str(g48), own_state)
    assert (kept.generator, kept.discriminator) == (NO_PRETRAIN, own_state)
    assert config_pretrains.pretrain_choices(workspace, 32000, str(titan_g), str(titan_d)).generator == str(titan_g)
    assert config_pretrains.partner_of(workspace, str(custom_g)) == str(custom_d)
    assert config_pretrains.partner_of(workspace, own_state) is None

    # a new download shows on the next listing: no restart
    new_g, _ = _pair(root / "Snowie", "G_Snowie_40k.pth", "D_Snowie_40k.pth", 40000)
    offered = config_pretrains.pretrain_choices(workspace, 40000, None, None).generators
    assert str(new_g) in [value for _, value in offered]


def test_rate_tags_in_names() -> None:
    root = Path("/a")
    assert rate_from_name(root / "f0G40k.pth", root) == 40000
    assert rate_from_name(root / "G-f048k-TITAN.pth", root) == 48000
    assert rate_from_name(root / "KLM" / "32k" / "G.pth", root) == 32000
    assert rate_from_name(root / "G_148k.pth", root) is None
    assert rate_from_name(root / "G_40kx.pth", root) is None


def test_rvc_messages_name_the_forms_labels() -> None:
    text = "use --batch-size 4 or less; turn on --auto-stop; prepare with --validation 0.05; --other stays"
    assert handlers.ui_text(text) == (
        "use 'Batch size' 4 or less; turn on 'Stop when overtraining'; "
        "prepare with the Prepare Dataset tab's 'Validation clips' 0.05; --other stays"
    )
