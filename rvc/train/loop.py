"""The training loop: read it top to bottom.

One step = a generator forward on a random slice of each clip, a discriminator
update (LSGAN), and a generator update (LSGAN + feature matching + 45 x L1 mel +
KL), as RVC trains. The dataset lives on the device as dense padded tensors (a
batch is one gather), or streams to it a batch at a time when too big
(batches.py). Losses and grad norms are summed on the device and fetched only
when a progress event is printed (a host sync), at most every
``log_every_steps`` steps or ``log_every_seconds`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rvc.config.batch import held_out_batch
from rvc.config.experiment import ExperimentConfig
from rvc.experiment import Experiment
from rvc.models.weights import load_pretrain
from rvc.train import out_of_memory
from rvc.train.batch_choice import BatchChoice, resolve_batch, with_batch
from rvc.train.batches import ResidentBatches, StreamedBatches, epoch_rows, streams
from rvc.train.data import TrainingSet, load_splits
from rvc.train.distributed import Distributed, all_reduce_gradients, broadcast_parameters
from rvc.train.events import DoneEvent, StartEvent
from rvc.train.graph import ready_step
from rvc.train.loop_events import EpochTimes, RateWindow, StepPlace, report_epoch, step_event
from rvc.train.mel import MultiScaleMel, Spectrogram
from rvc.train.models import Models, build_models, configure_backends
from rvc.train.overtrain import OvertrainDetector
from rvc.train.precision import resolve_precision
from rvc.train.progress import ProgressWriter
from rvc.train.resume import TrainState, apply_lr_scale, restore, state_extra
from rvc.train.run_end import export_finished, learning_rate, roll_back
from rvc.train.run_log import RunLog
from rvc.train.saver import StateSaver
from rvc.train.step import StepMetrics, TrainStep
from rvc.train.validation import HeldOutMel, ValidationSchedule

# Non-finite steps in a row before rolling back to the last state with a lower LR (run_end.roll_back).
ROLLBACK_AFTER = 5
# With several processes, steps between checks that every rank agrees to stop (each check syncs).
STOP_CHECK_EVERY = 10


class Trainer:
    """Holds what the loop needs; ``run()`` is the loop."""

    def __init__(
        self,
        experiment: Experiment,
        config: ExperimentConfig,
        device: torch.device,
        progress: ProgressWriter,
        should_stop: Callable[[], bool],
        dist: Distributed | None = None,
        log: Callable[[str], None] = print,
        compile_times: Path | None = None,
    ) -> None:
        self.experiment = experiment
        self.config = config
        self.device = device
        self.progress = progress
        self.should_stop = should_stop
        self.dist = dist or Distributed()
        self.log = log
        self.checkpoints = experiment.checkpoints
        self.precision = resolve_precision(config.train.precision, device)
        self.state = TrainState()
        self.detector = OvertrainDetector(config.train.overtrain_patience)
        self.validation_schedule = ValidationSchedule(config.train.validate_every, config.train.epochs)
        self.gpu: Any = None
        self.run_log = RunLog(experiment, config, log)
        self.saver: StateSaver | None = None  # rank 0's: the others save nothing
        self.compile_times = compile_times  # where measured compile times are kept (beside the compile cache)
        self.held_out: HeldOutMel | None = None  # built at the first validation

    # --- set-up ----------------------------------------------------------
    def _load_data(self) -> tuple[TrainingSet, TrainingSet | None, bool]:
        """The training and held-out clips, on the device unless the training set streams; whether it streams."""
        train_set, validation = load_splits(self.experiment, self.config.model)
        placement = self.config.train.data_placement
        if not streams(placement, train_set, self.device):
            return train_set.to(self.device), (validation.to(self.device) if len(validation) else None), False
        self.log(
            f"streaming the training set to the GPU one batch at a time ({train_set.nbytes() / 2**30:.1f} GiB; "
            f"data_placement={placement})"
        )
        return train_set, (validation if len(validation) else None), True

    def _size_batches(
        self, models: Models, spectrogram: Spectrogram, multi: MultiScaleMel | None, clips: TrainingSet, streamed: bool
    ) -> tuple[ResidentBatches | StreamedBatches, BatchChoice]:
        """Choose the batch size (batch_choice.py) once, before the step's shapes are fixed, and from then
        on train with a config that holds the number (config.json keeps "auto"); return the batches."""
        args = (self.config, models, spectrogram, multi, clips, self.precision, self.device, self.state.batch_size)
        batch = resolve_batch(*args, self.dist)
        self.config = self.run_log.config = with_batch(self.config, batch.size)
        self.state.batch_size = batch.size  # saved with the state: a resumed "auto" run keeps it
        trials = f"; its trials took {batch.trials_s:.1f} s" if batch.trials_s else ""
        self.log(f"batch size {batch.size} ({batch.reason}){trials}")
        if streamed:
            return StreamedBatches(clips, self.device, self.config.train.grad_accum, batch.size), batch
        return ResidentBatches(clips, self.device), batch

    def _start_models(self, models: Models) -> None:
        """Resume from the newest complete state, or start from the pretrains (or from scratch)."""
        train = self.config.train
        if self.dist.is_main and (leftovers := self.checkpoints.remove_leftovers()):
            self.log(
                f"removed {len(leftovers)} file(s) an interrupted save left: {', '.join(p.name for p in leftovers)}"
            )
        steps = self.checkpoints.complete_steps()
        if train.resume and steps:
            loaded = self.checkpoints.load_state(steps[-1])
            self.state = restore(loaded, models, self.detector, self.config, self.device, self.checkpoints)
            apply_lr_scale(models, self.state.pending_lr_factor)  # a rollback's lower LR, once
            self.state.pending_lr_factor = 1.0
            # Epochs counted from 1, as the Train tab counts them: the one this run continues (or begins).
            where = "in" if self.state.batches_done else "at the start of"
            self.log(f"resumed from step {self.state.step}, {where} epoch {self.state.epoch + 1}")
            return
        if train.pretrained_g and train.pretrained_d:
            load_pretrain(models.generator, train.pretrained_g)
            load_pretrain(models.discriminator, train.pretrained_d)
            self.log(f"loaded pretrains {train.pretrained_g} and {train.pretrained_d}")

    # --- the loop ------------------------------------------------------------
    def run(self) -> int:
        """Train to the last epoch (or a stop); return the process's exit status."""
        try:
            return self._run()
        except Exception as error:
            # Before the start event (a graph's capture, the first steps' set-up) the batch "auto" chose
            # is known only here: the message names it, not "auto".
            if self.state.batch_size and out_of_memory.caused_by_out_of_memory(error):
                raise out_of_memory.OutOfMemoryAtBatch(self.state.batch_size) from error
            raise
        finally:
            self._close_saver()  # a failure or a stop still finishes the write in flight

    def _run(self) -> int:
        train, cfg = self.config.train, self.config.model
        torch.manual_seed(train.seed + self.dist.rank)
        configure_backends(self.device, train.tf32)
        train_set, validation, streamed = self._load_data()
        models = build_models(self.config, self.device, self.precision)
        self._start_models(models)
        spectrogram = Spectrogram.for_model(cfg).to(self.device)
        multiscale = MultiScaleMel(cfg.sample_rate).to(self.device) if train.multiscale_mel else None
        if self.dist.world_size > 1:
            broadcast_parameters([models.generator, models.discriminator])
        batches, batch = self._size_batches(models, spectrogram, multiscale, train_set, streamed)
        train = self.config.train  # the batch size a number from here on

        per_step = batch.size * train.grad_accum * self.dist.world_size
        steps_per_epoch = max(1, math.ceil(len(train_set) / per_step))
        total_steps = steps_per_epoch * train.epochs
        metrics = StepMetrics(self.device)
        metrics.reset(self.state.skipped_steps)
        step = TrainStep(
            self.config,
            models,
            spectrogram,
            batches.data,
            metrics,
            self.precision,
            multiscale=multiscale,
            all_reduce=all_reduce_gradients(self.dist.world_size) if self.dist.world_size > 1 else None,
        )
        steps_left = total_steps - self.state.step
        prepared = ready_step(
            step, self.dist.world_size, steps_left, self.state.skipped_steps, self.compile_times, self.log
        )
        if self.dist.is_main:
            self.progress.emit(
                StartEvent(
                    config=self.config.to_dict(),
                    clips=len(train_set),
                    validation_clips=len(validation) if validation is not None else 0,
                    dataset_seconds=round(train_set.seconds, 2),
                    data_placement="stream" if isinstance(batches, StreamedBatches) else "resident",
                    steps_per_epoch=steps_per_epoch,
                    total_steps=total_steps,
                    epochs=train.epochs,
                    start_epoch=self.state.epoch + 1,
                    start_step=self.state.step,
                    device=str(self.device),
                    precision=self.precision.name,
                    world_size=self.dist.world_size,
                    step_mode=prepared.mode,
                    step_mode_reason=prepared.why,
                    compile_s=round(prepared.prepare_s, 2),
                    batch_size_reason=batch.reason,
                    batch_trials_s=round(batch.trials_s, 2),
                )
            )
            self.run_log.open()
            self.saver = StateSaver(
                self.checkpoints.folder,
                train.keep_last,
                self.device,
                self.progress.emit,
            )
            if self.device.type == "cuda":
                from rvc.train.gpu_stats import GpuStats

                self.gpu = GpuStats(self.device.index or 0)
        window = RateWindow()

        for epoch in range(self.state.epoch + 1, train.epochs + 1):
            epoch_start = time.monotonic()
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)  # each epoch event reports its own peak
            rows = epoch_rows(len(train_set), epoch, train, self.dist.world_size, steps_per_epoch)
            shard = batches.epoch(rows[:, self.dist.rank])
            for batch_in_epoch in range(self.state.batches_done, steps_per_epoch):
                prepared.run(batches.step(shard, batch_in_epoch))
                self.state.step += 1
                window.steps += 1
                if window.due(train.log_every_steps, train.log_every_seconds, batch_in_epoch == steps_per_epoch - 1):
                    in_a_row = self._report_steps(metrics, models, window, epoch, batch_in_epoch, steps_per_epoch)
                    if in_a_row >= ROLLBACK_AFTER:
                        self._close_saver()  # the write in flight may be the state to roll back to
                        return roll_back(self.checkpoints, self.state.step, in_a_row, self.dist, self.progress.emit)
                if self._stop_requested(mid_epoch=True):
                    self.state.batches_done = batch_in_epoch + 1
                    return self._stop(models, epoch_done=False)

            self.state.epoch = epoch
            self.state.batches_done = 0
            models.scheduler_g.step()
            models.scheduler_d.step()
            self._finish_epoch(models, spectrogram, validation, train_set, epoch, time.monotonic() - epoch_start)
            if self._auto_stop_now():
                if self.dist.is_main and epoch % train.save_every and epoch != train.epochs:
                    self._checkpoint(models)
                break
            if self._stop_requested():
                return self._stop(models, epoch_done=True)

        agree = self._ranks_agree(models)
        if self.dist.is_main:
            best = self.saver.best_generator() if self.saver is not None else None
            export_finished(self.experiment, self.config, models.generator, best, self.state, self.progress.emit)
            self._close_saver()  # the last state and the best one are on disk before `done`
            self.progress.emit(
                DoneEvent(
                    epoch=self.state.epoch,
                    step=self.state.step,
                    skipped_steps=self.state.skipped_steps,
                    overtrain=self.detector.summary(),
                    stopped_early=self.state.epoch < train.epochs,
                    ranks_agree=agree,
                )
            )
            self.run_log.close()
        return 0

    def _report_steps(
        self, metrics: StepMetrics, models: Models, window: RateWindow, epoch: int, batch: int, steps_per_epoch: int
    ) -> int:
        """Read the step metrics (a host sync), emit a step event; return the non-finite steps in a row."""
        train = self.config.train
        values, in_a_row, skipped = metrics.read()
        rate = window.close()
        self.state.skipped_steps = skipped
        lr = learning_rate(models)
        if self.dist.is_main:
            gpu: dict[str, float] = self.gpu.read() if self.gpu is not None else {}
            where = StepPlace(epoch, self.state.step, batch, steps_per_epoch)
            self.progress.emit(step_event(train, where, lr, values, rate, skipped, gpu))
            self.run_log.scalars(values | gpu | {"learning_rate": lr}, self.state.step)
        return in_a_row

    def _finish_epoch(
        self,
        models: Models,
        spectrogram: Spectrogram,
        validation: TrainingSet | None,
        train_set: TrainingSet,
        epoch: int,
        seconds: float,
    ) -> None:
        """Validate, keep the best state, report the epoch, warn of overtraining, save when due.

        The epoch event says what each part cost the training thread: ``validation_s`` (the held-out
        loss and, on a new best, the copy of G that keeps it), ``sample_s`` (TensorBoard's images and
        audio), ``save_s`` (the state's snapshot; the files are written on a background thread).
        """
        train = self.config.train
        val: dict[str, float] = {}
        is_best = False
        validation_s = 0.0
        saving = epoch % train.save_every == 0 or epoch == train.epochs
        sampling = saving or epoch == 1  # rendering images each epoch would cost more than a fast epoch
        # A TensorBoard sample is the held-out pass's first clip, so an epoch that samples validates.
        validating = self.validation_schedule.due(epoch, seconds) or sampling
        if validation is not None and self.dist.is_main and validating:
            started = time.monotonic()
            if self.held_out is None:
                graphed = self.device.type == "cuda"
                at_once = held_out_batch(len(validation), train.resolved_batch_size)
                self.held_out = HeldOutMel(models.generator, spectrogram, validation, at_once, graphed)
            val = {"loss/val/mel": self.held_out()}
            if self.held_out.capture_error is not None:
                self.log(f"the held-out loss runs eagerly: its CUDA graph failed ({self.held_out.capture_error})")
                self.held_out.capture_error = None  # said once
            is_best = self.detector.update(epoch, val["loss/val/mel"])
            if is_best and self.saver is not None:
                self.saver.hold_best(models.generator, epoch, self.state.step, learning_rate(models))
            validation_s = time.monotonic() - started
            self.validation_schedule.done(validation_s)  # what follows a validation is part of its cost
            self.run_log.scalars(val, self.state.step)
            self.state.history.append({"epoch": epoch, **val})
        if not self.dist.is_main:
            return
        started = time.monotonic()
        if sampling and validation is not None and self.held_out is not None and self.held_out.first_clip is not None:
            real = validation.wav[:1, : self.held_out.first_samples]
            fake = self.held_out.first_clip
            self.run_log.converted_sample(real, fake, spectrogram, self.state.step, saving, validation.sample_rate)
        elif sampling:
            self.run_log.sample(models.generator, spectrogram, train_set, self.state.step, audio=saving)
        sample_s = time.monotonic() - started
        save_s = self._checkpoint(models) if saving else 0.0
        peak = reserved = None
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**30
            reserved = torch.cuda.max_memory_reserved(self.device) / 2**30
        times = EpochTimes(seconds, validation_s, sample_s, save_s, peak, reserved)
        report_epoch(self.progress.emit, train, self.detector, epoch, self.state.step, times, val, is_best)

    # --- around the loop -------------------------------------------------------
    def _stop_requested(self, mid_epoch: bool = False) -> bool:
        stop = self.should_stop()
        if self.dist.world_size == 1:
            return stop
        if mid_epoch and self.state.step % STOP_CHECK_EVERY:
            return False
        # Every rank must stop at the same step, or the others wait forever in an all-reduce;
        # agreeing costs a host sync, so mid-epoch the ranks compare notes every few steps only.
        return self.dist.any_rank(stop, self.device)

    def _auto_stop_now(self) -> bool:
        """Whether --auto-stop ends the run after this epoch: rank 0 judges (it alone validates), all follow."""
        if not self.config.train.auto_stop:
            return False
        return self.dist.rank0_says(self.detector.overtraining, self.device)

    def _checkpoint(self, models: Models) -> float:
        """Save the whole state (written in the background; its ``checkpoint`` event follows); return the
        seconds the training thread spent."""
        assert self.saver is not None, "rank 0 saves"
        extra = state_extra(models, self.state, self.detector, self.config, self.device)
        return self.saver.save(models, self.state.epoch, self.state.step, learning_rate(models), extra)

    def _close_saver(self) -> None:
        saver, self.saver = self.saver, None
        if saver is not None:
            saver.close()

    def _stop(self, models: Models, epoch_done: bool) -> int:
        """Save the current state (mid-epoch too: resume continues at the next batch) and exit cleanly."""
        agree = self._ranks_agree(models)
        if self.dist.is_main:
            self._checkpoint(models)
            self._close_saver()  # on disk before `done`: the UI may start the next run at once
            self.progress.emit(
                DoneEvent(
                    epoch=self.state.epoch,
                    step=self.state.step,
                    stopped=True,
                    skipped_steps=self.state.skipped_steps,
                    overtrain=self.detector.summary(),
                    ranks_agree=agree,
                )
            )
            self.run_log.close()
        return 0

    def _ranks_agree(self, models: Models) -> bool | None:
        """With several processes, whether they all hold the same weights now (every rank calls it)."""
        agree = self.dist.weights_agree([models.generator, models.discriminator], self.device)
        if agree is False and self.dist.is_main:
            self.log(f"warning: the processes' weights differ at step {self.state.step}: they trained apart")
        return agree
