"""A tiny real plugin, used only by the tests: an MLP regressing a smooth function.

It trains with torch on generated data, draws from the python, numpy and torch RNGs every
epoch (so a resume that forgot one of them would diverge), checkpoints at each epoch end and
plots its loss curve in ``report``. ``step_delay`` slows it so a test can kill it mid-epoch.
torch is imported inside ``run``, as every plugin must, so ``hw3 list`` stays light.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainers import plots
from trainers.api import ReportContext, RunContext, Summary, setting


@dataclass(frozen=True)
class Config:
    epochs: int = setting(4, "Training epochs.")
    steps: int = setting(6, "Minibatches per epoch.")
    batch_size: int = setting(16, "Samples per minibatch.")
    hidden: tuple[int, ...] = setting((16, 16), "Hidden layer widths.")
    lr: float = setting(0.05, "SGD learning rate.")
    step_delay: float = setting(0.0, "Seconds to sleep after each step (tests kill mid-epoch).")
    synthetic: bool = setting(True, "Declare the generated data a stand-in.")
    fail: bool = setting(False, "Raise an error in the first epoch (tests the failed state).")


class Tenant:
    name = "tenant"
    summary = "Tiny MLP regression on generated data (test plugin)."
    config_type = Config

    def run(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # bit-identical across processes
        try:
            return self._train(config, ctx)
        finally:
            torch.set_num_threads(threads)

    def _train(self, config: Config, ctx: RunContext) -> dict[str, Any]:
        import numpy as np
        import torch
        from torch import nn

        if config.synthetic:
            ctx.use_stand_in("generated regression data")
        gen = torch.Generator().manual_seed(ctx.seed)
        n = config.steps * config.batch_size
        x = torch.randn(n + 64, 3, generator=gen)
        y = torch.sin(x.sum(dim=1, keepdim=True))
        widths = [3, *config.hidden]
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(0.1)]
        model = nn.Sequential(*layers, nn.Linear(widths[-1], 1))
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        state = ctx.checkpoints.load(model, opt, sched)
        start, history = (state.epoch, list(state.extra["history"])) if state else (0, [])
        with ctx.progress.bar("epochs", total=config.epochs, unit="epoch") as bar:
            bar.advance(start)
            for epoch in range(start, config.epochs):
                if config.fail:
                    raise RuntimeError("tenant was told to fail")
                noise = float(np.random.normal()) * 1e-3 + random.random() * 1e-3
                perm = torch.randperm(n)
                model.train()
                total = 0.0
                with ctx.progress.bar("steps", total=n, unit="sample") as steps:
                    for s in range(config.steps):
                        idx = perm[s * config.batch_size:(s + 1) * config.batch_size]
                        loss = nn.functional.mse_loss(model(x[idx]), y[idx] + noise)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        total += loss.item()
                        ctx.progress.log({"epoch": epoch, "step": s, "loss": loss}, show=False)
                        steps.advance(config.batch_size)
                        time.sleep(config.step_delay)
                sched.step()
                model.eval()
                with torch.no_grad():
                    rmse = float(nn.functional.mse_loss(model(x[n:]), y[n:]).sqrt())
                history.append(total / config.steps)
                ctx.progress.log({"epoch": epoch + 1, "train_loss": history[-1],
                                  "test_rmse": rmse})
                bar.advance()
                ctx.checkpoints.save(epoch + 1, model, opt, sched, {"history": history})
        ctx.progress.table("tenant", [{"epochs": config.epochs, "test_rmse": rmse}])
        return {"headline": f"test RMSE {rmse:.4f}", "test_rmse": rmse, "train_loss": history}

    def report(self, results: Mapping[str, Any], ctx: ReportContext) -> Summary:
        fig, ax = plots.subplots()
        ax.plot(range(1, len(results["train_loss"]) + 1), results["train_loss"])
        ax.set_xlabel("epoch")
        ax.set_ylabel("train MSE")
        if ctx.stand_in:
            plots.stamp_synthetic(fig)
        saved = plots.save_figure(fig, ctx.plot_path("loss"), formats=("png",))
        text = (f"# tenant\n\nTest RMSE after {ctx.config.epochs} epochs: "
                f"{results['test_rmse']:.4f}.\n")
        return Summary(text, tuple(saved))


plugin = Tenant()
