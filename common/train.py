"""The one training loop: fetch a batch, run the due phases, EMA, counters, then maintenance.

Maintenance at its intervals: NaN/Inf guard, status line and stats, sample grids, checkpoints,
and after each epoch the trainer's score, if it gives one (best model kept as checkpoints/best.pt).
A SIGINT/SIGTERM stops the run cleanly after the current iteration with a checkpoint.
"""
from __future__ import annotations

import json
import math
import platform
import signal
import sys
import time
from pathlib import Path

import torch

from common import checkpoint, dist, speed
from common import config as config_lib
from common import logging as log
from common.data import EpochLoader, seeded_rngs
from common.data.loader import dead_worker, device_batches
from common.errors import LoaderWorkerDied, TrainingDiverged, first_line
from common.graphs import PhaseGraphs
from common.images import save_grid
from common.precision import Precision
from common.seeds import mix
from common.trainer import (EpochScore, Phase, Progress, Trainer, preserved_buffers,
                            update_ema, write_back_ema)


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a flag checked between iterations."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True
        log.log(f"signal {signum}: stopping after this iteration (again to abort at once)")
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _setup_backends(rc, device: torch.device) -> None:
    torch.backends.cuda.matmul.allow_tf32 = bool(rc.TF32)
    torch.backends.cudnn.allow_tf32 = bool(rc.TF32)
    torch.backends.cudnn.benchmark = not rc.DETERMINISTIC
    if rc.get("THREADS", 0) > 0:  # small CPU runs beside a loader worker: 1 avoids oversubscription
        torch.set_num_threads(rc.THREADS)
    if rc.DETERMINISTIC:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _optimizer_params(opt: torch.optim.Optimizer) -> list:
    return [p for group in opt.param_groups for p in group["params"]]


class Loop:
    """State of one run of the loop (kept in one object so the steps read top to bottom)."""

    def __init__(self, trainer: Trainer, run_dir: Path, resume_state: dict | None):
        self.trainer, self.cfg, self.rc = trainer, trainer.cfg, trainer.cfg.RUN
        self.run_dir, self.device = Path(run_dir), trainer.device
        self.precision = Precision(self.rc.PRECISION, self.device)
        self.params = {n: _optimizer_params(o) for n, o in trainer.optimizers.items()}
        self.graphs: PhaseGraphs | None = None
        self.last_saved: tuple[int, Path] | None = None
        self.resume_state = resume_state
        self.evaluator = None  # common.metrics.Evaluator when the config's EVAL section is on
        # the best Trainer.epoch_score so far {name, value, lower_is_better, iteration, epoch};
        # written into every checkpoint so that a resumed run keeps comparing against it
        self.selection: dict | None = None
        self.waiting_for_data = False  # True while the next batch is awaited (between iterations)

    # ---- one iteration ----------------------------------------------------------------------
    def run_phase(self, phase: Phase, batch: dict, set_to_none: bool = True,
                  capturing: bool = False) -> None:
        opts = [self.trainer.optimizers[n] for n in phase.optimizers]
        for opt in opts:
            opt.zero_grad(set_to_none=set_to_none)
        with self.precision.autocast():
            loss = phase.fn(batch)
        if loss is None:  # the phase decided not to update this time
            if capturing:
                raise RuntimeError(f"phase {phase.name!r} skipped its update while being captured "
                                   "in a CUDA graph; this trainer is not graph-safe")
            return
        scaler = self.precision.scaler
        if isinstance(loss, dict):
            unknown = [k for k in loss if k not in phase.optimizers]
            if unknown:
                raise KeyError(f"phase {phase.name!r} returned losses for {unknown}, which are "
                               f"not among its optimizers {phase.optimizers}")
            items = list(loss.items())
            for i, (name, value) in enumerate(items):
                scaler.scale(value).backward(inputs=self.params[name],
                                             retain_graph=i < len(items) - 1)
                log.report(f"loss/{phase.name}/{name}", value)
                self.finite[phase.name] &= torch.isfinite(value.detach())
        else:
            scaler.scale(loss).backward()
            log.report(f"loss/{phase.name}", loss)
            self.finite[phase.name] &= torch.isfinite(loss.detach())
        for name in phase.optimizers:
            dist.all_reduce_gradients(self.params[name])
        for opt in opts:
            scaler.step(opt)

    def eager_iteration(self, batch: dict) -> None:
        it = self.progress.iteration
        for phase in self.phases:
            if it % phase.every == 0:
                self.run_phase(phase, batch)
        self.after_phases()

    def after_phases(self) -> None:
        self.precision.scaler.update()
        for name, decay in self.trainer.ema.items():
            update_ema(self.trainer.nets[name + "_ema"], self.trainer.nets[name], decay)

    def iteration(self, batch: dict) -> None:
        """One training iteration on a batch already on the device; counters advance."""
        write_back_ema(self.trainer)  # the EMA's other half: Trainer.ema_write_back_due
        if self.graphs is not None:
            self.graphs.iteration(batch)
        else:
            self.eager_iteration(batch)
        self.progress.iteration += 1
        self.progress.nimg += self.trainer.batch_size

    # ---- maintenance ------------------------------------------------------------------------
    def counters(self) -> dict:
        p = self.progress
        return {"iteration": p.iteration, "epoch": p.iteration // p.iters_per_epoch,
                "nimg": p.nimg}

    def guard(self) -> None:
        bad = [name for name, ok in self.finite.items() if not bool(ok)]
        if not bad:
            return
        raise TrainingDiverged(
            f"a loss of phase(s) {', '.join(bad)} became NaN or Inf by iteration "
            f"{self.progress.iteration} (checked every {self.rc.NAN_CHECK_EVERY}); stopped "
            f"without saving; {self.kept()}")

    def kept(self) -> str:
        if self.last_saved:
            return f"last good checkpoint: {self.last_saved[1]} (iteration {self.last_saved[0]})"
        if self.resume_state is not None:
            return (f"the checkpoint this run resumed from (iteration "
                    f"{self.resume_state['counters']['iteration']}) is kept")
        return "no checkpoint was written before it"

    def status(self) -> None:
        stats = log.collect()
        now = time.perf_counter()
        p = self.progress
        images = (p.iteration - self.tick_iteration) * self.trainer.batch_size
        rate = images / max(now - self.tick_time, 1e-9)
        self.tick_time, self.tick_iteration = now, p.iteration
        extra = {"epoch": p.iteration // p.iters_per_epoch, "kimg": round(p.nimg / 1000, 3),
                 "img_per_s": round(rate, 2)}
        if self.device.type == "cuda":
            extra["mem_gb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)
        log.write_stats(stats, p.iteration, extra)
        losses = "  ".join(f"{k} {v:.4g}" for k, v in sorted(stats.items()))
        mem = f"  mem {extra['mem_gb']:.2f}G" if "mem_gb" in extra else ""
        line = (f"it {p.iteration}/{p.total}  ep {extra['epoch']}  kimg {extra['kimg']:.1f}  "
                f"{rate:.0f} img/s{mem}  {losses}")
        if self.bar is not None:
            self.bar.set_postfix_str(f"{rate:.0f} img/s", refresh=False)
            self.bar.write(line)
        log.log(line, console=self.bar is None)

    def samples(self) -> None:
        if not dist.is_main():
            return
        it = self.progress.iteration
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices), \
                preserved_buffers(self.trainer.nets):
            pictures = self.trainer.snapshot_images()
        for name, (images, nrow) in pictures.items():
            save_grid(images, self.run_dir / "samples" / f"{name}_{it:07d}.png", nrow)

    def non_finite_networks(self) -> list[str]:
        """Networks with a NaN/Inf parameter or buffer (one synchronisation for all of them)."""
        flags, names = [], []
        for name, net in self.trainer.nets.items():
            tensors = [t for t in [*net.parameters(), *net.buffers()] if t.is_floating_point()]
            if tensors:
                flags.append(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
                names.append(name)
        ok = torch.stack(flags).cpu().tolist() if flags else []
        return [name for name, good in zip(names, ok) if not good]

    def save(self, path: Path) -> None:
        bad = self.non_finite_networks()
        if bad:  # the losses can still be finite when the last update overflowed the weights
            raise TrainingDiverged(
                f"the parameters of network(s) {', '.join(bad)} are NaN or Inf at iteration "
                f"{self.progress.iteration}; {path.name} not written; {self.kept()}")
        state = checkpoint.capture(self.trainer, self.counters(), self.precision.scaler)
        if self.selection is not None:
            state["selection"] = dict(self.selection)
        if dist.is_main():
            checkpoint.save(state, path)
        self.last_saved = (self.progress.iteration, path)

    def save_reals(self, dataset) -> None:
        if not dist.is_main():
            return
        n = min(64, len(dataset))
        with seeded_rngs(self.rc.SEED):
            images = torch.stack([dataset[i]["image"] for i in range(n)])
        save_grid(images, self.run_dir / "samples" / "reals.png", 8)

    # ---- the run ----------------------------------------------------------------------------
    def prepare(self, start: int, total: int, iters_per_epoch: int) -> None:
        """Everything but the data: speed switches, restored state, phases, counters."""
        trainer, rc = self.trainer, self.rc
        _setup_backends(rc, self.device)
        speed.configure_networks(trainer, rc.CHANNELS_LAST, rc.COMPILE, rc.COMPILE_MODE)
        if self.resume_state is not None:
            start = checkpoint.restore(trainer, self.resume_state, self.precision.scaler)[
                "iteration"]
            self.selection = self.resume_state.get("selection")
        use_graphs = rc.CUDA_GRAPHS and self.device.type == "cuda"
        if rc.CUDA_GRAPHS and not use_graphs:
            log.log(f"RUN.CUDA_GRAPHS: CUDA graphs need a CUDA device; running eagerly on "
                    f"{self.device}")
        speed.configure_optimizers(trainer, rc.FUSED_OPTIM, use_graphs)
        self.progress = trainer.progress = Progress(start, start // iters_per_epoch,
                                                    start * trainer.batch_size, total,
                                                    iters_per_epoch)
        self.phases = trainer.phases()
        self.finite = {p.name: torch.ones((), dtype=torch.bool, device=self.device)
                       for p in self.phases}
        self.graphs = PhaseGraphs(self) if use_graphs else None

    def run(self) -> Progress:
        trainer, rc = self.trainer, self.rc
        dataset = trainer.dataset()
        loader = EpochLoader(dataset, trainer.batch_size, dist.world_size(), dist.rank(),
                             rc.SEED, rc.WORKERS, self.device.type == "cuda",
                             name=str(config_lib.get(trainer.cfg, "DATA.ROOT") or
                                      f"dataset {type(dataset).__name__}"))
        ipe = loader.batches_per_epoch
        total = rc.MAX_ITERS if rc.MAX_ITERS > 0 else trainer.epochs * ipe
        self.prepare(0, total, ipe)
        # the data and the checkpoint are valid: only now is the run directory written
        write_run_files(trainer.cfg, self.run_dir)
        log.open_sinks(self.run_dir)
        start = self.progress.iteration
        if self.resume_state is not None:
            log.log(f"resumed at iteration {start} (epoch {start // ipe})")
        else:
            trainer.start_fresh()
            dist.broadcast_parameters(trainer.nets.values())
            torch.manual_seed(mix(rc.SEED, dist.rank(), 1))  # each rank draws its own noise
            self.save_reals(dataset)
        show_bar = rc.PROGRESS == "bar" or (rc.PROGRESS == "auto" and sys.stderr.isatty())
        self.bar = None
        if show_bar and dist.is_main():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, unit="it", dynamic_ncols=True)
        self.tick_time, self.tick_iteration = time.perf_counter(), start
        self.prepare_evaluation()
        log.log(f"training {trainer.name}: {total} iterations, {ipe} per epoch, batch "
                f"{trainer.batch_size} over {dist.world_size()} process(es) on {self.device}")
        try:
            with StopRequest() as stop:
                self.waiting_for_data = True  # on CUDA the prefetcher fetches a batch at once
                batches = device_batches(loader.from_iteration(start), self.device,
                                         rc.CHANNELS_LAST)
                if self.train(batches, total, start, stop):
                    log.log(f"stopped at iteration {self.progress.iteration}; resume with "
                            "--resume auto")
                    return self.progress
        except RuntimeError as err:
            what = dead_worker(err)
            if what is None:
                raise
            raise LoaderWorkerDied(self.after_worker_death(what)) from None
        if self.bar is not None:
            self.bar.close()
        return self.progress

    def train(self, batches, total: int, start: int, stop: StopRequest) -> bool:
        """Iterations until `total` or a stop request (then True)."""
        ipe = self.progress.iters_per_epoch
        while self.progress.iteration < total:
            epoch, offset = divmod(self.progress.iteration, ipe)
            if offset == 0 or self.progress.iteration == start:
                self.trainer.set_epoch(epoch)
                self.progress.epoch = epoch
            self.waiting_for_data = True
            batch = next(batches)
            self.waiting_for_data = False
            self.iteration(batch)
            if self.bar is not None:
                self.bar.update(1)
            stopping = self.stop_requested(stop)
            self.maintenance(total, stopping)
            if stopping:
                return True
        return False

    def after_worker_death(self, what: str) -> str:
        """Keep what can be kept after a loader worker died; the message says what it was."""
        if self.bar is not None:
            self.bar.close()
        it = self.progress.iteration
        hint = ("; resume with --resume auto (out of memory? fewer RUN.WORKERS or a smaller "
                "batch need less)")
        if self.waiting_for_data:  # between two iterations: the networks are consistent
            path = self.run_dir / "checkpoints" / "last.pt"
            try:
                self.save(path)
            except (OSError, RuntimeError) as err:  # e.g. the same lack of memory
                return (f"{what} at iteration {it}; {path.name} not written "
                        f"({first_line(err)}); {self.kept()}" + hint)
            written = f"{path} written" if dist.is_main() else self.kept()
            return f"{what} at iteration {it}; {written}" + hint
        return f"{what} during iteration {it + 1}; {self.kept()}" + hint

    def stop_requested(self, stop: StopRequest) -> bool:
        if dist.world_size() == 1:
            return stop.requested
        if self.progress.iteration % max(1, self.rc.LOG_EVERY):
            return False
        flag = torch.tensor(float(stop.requested), device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def maintenance(self, total: int, stopping: bool) -> None:
        it, rc = self.progress.iteration, self.rc
        end = it >= total or stopping

        def due(every: int) -> bool:
            return every > 0 and it % every == 0

        snapshot = due(rc.SNAPSHOT_EVERY) or self.trainer.snapshot_due()
        if due(rc.NAN_CHECK_EVERY) or end or due(rc.CKPT_EVERY) or snapshot:
            self.guard()
        # scored even when a signal stops the run at an epoch's end: a skipped epoch would
        # never be scored after the resume, and could have been the best
        scored = due(self.progress.iters_per_epoch) and self.score_epoch() is not None
        if due(rc.LOG_EVERY) or end or scored:
            self.status()
        if due(rc.SAMPLE_EVERY) or end:
            self.samples()
        if snapshot:
            self.save(self.run_dir / "checkpoints" / f"ckpt_{it:07d}.pt")
        if due(rc.CKPT_EVERY) or end:
            self.save(self.run_dir / "checkpoints" / "last.pt")
        if self.evaluator is not None and not stopping and (due(self.cfg.EVAL.EVERY) or end):
            self.evaluate()  # not when a signal stops the run: it must end promptly

    # ---- model selection (Trainer.epoch_score) -------------------------------------------------
    def score_epoch(self) -> EpochScore | None:
        """The trainer's end-of-epoch score, reported for the stats row written right after;
        checkpoints/best.pt (atomic, like every checkpoint) when it beats the best so far."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices), \
                preserved_buffers(self.trainer.nets):
            score = self.trainer.epoch_score()
        if score is None:
            return None
        self.guard()  # never select a model whose losses went NaN
        value = float(dist.broadcast_object(float(score.value)))  # rank 0's networks are saved
        best, it = self.selection, self.progress.iteration
        if best is not None and best["name"] != score.name:
            log.log(f"model selection: the checkpoint's best is by {best['name']}, this run "
                    f"scores {score.name}; selecting afresh")
            self.selection = best = None
        lower = score.lower_is_better
        if math.isfinite(value) and (best is None or (value < best["value"] if lower
                                                      else value > best["value"])):
            self.selection = best = {"name": score.name, "value": value, "lower_is_better": lower,
                                     "iteration": it, "epoch": it // self.progress.iters_per_epoch}
            self.save(self.run_dir / "checkpoints" / "best.pt")
            log.log(f"epoch {best['epoch']}: {score.name} {value:.4f}, the best so far; wrote "
                    "checkpoints/best.pt")
        log.report(score.name, value)
        if best is not None:
            log.report(f"{score.name}/best", best["value"])
        return score

    # ---- evaluation during training (EVAL section; common/metrics) ---------------------------
    def prepare_evaluation(self) -> None:
        """Check the EVAL section (and find the weights) before the first iteration, on rank 0."""
        ev = self.cfg.get("EVAL")
        if ev and ev.METRICS and dist.is_main():
            from common import metrics
            self.evaluator = metrics.evaluator_from_config(self.cfg, self.device, log.log)

    def evaluate(self) -> None:
        """The chosen metrics on the generator in eval mode, appended to metrics.jsonl; training
        state (RNGs, buffers, network modes) is untouched. Other ranks wait at their next step."""
        from common import metrics
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices), \
                preserved_buffers(self.trainer.nets), metrics.eval_mode(self.trainer.nets):
            records = self.evaluator.run(self.trainer)
        metrics.append_records(records, self.run_dir / "metrics.jsonl", self.counters())
        log.log(f"it {self.progress.iteration}  {metrics.summary(records)}")


def write_run_files(cfg, run_dir: Path, argv: list[str] | None = None) -> None:
    """config.yml (enough to replay the run) and env.json (versions, command line)."""
    if not dist.is_main():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    config_lib.dump(cfg, run_dir / "config.yml")
    env = {"argv": argv if argv is not None else sys.argv, "python": platform.python_version(),
           "torch": str(torch.__version__), "cuda": torch.version.cuda,
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
           "world_size": dist.world_size()}
    (run_dir / "env.json").write_text(json.dumps(env, indent=1))


def run(trainer: Trainer, run_dir: str | Path, resume_state: dict | None = None) -> Progress:
    """Train `trainer` in `run_dir` (config.yml, log.txt, stats.jsonl, tb/, samples/,
    checkpoints/), continuing from `resume_state` (a loaded checkpoint) if given."""
    log.hold()  # lines logged while the inputs are validated reach log.txt once it exists
    try:
        return Loop(trainer, Path(run_dir), resume_state).run()
    finally:
        log.close_sinks()
