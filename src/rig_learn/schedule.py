"""The learner's schedule: when the VAE is fitted and how many gradient updates the data has earned.

One clock, counted in transitions: the env steps of `rig train` (`RIGAgent.learn`), the recorded
transitions of the bag trainer (`rig_trainer.online.OnlineTrainer`). Both read it from the same
learner YAML through this class, so one config file means one schedule in both:

- VAE pretraining on `vae.pretrain_images` images, `vae.pretrain_steps` Adam steps. `rig train`
  collects those images before its first step (random-action rollouts and/or goal images, as
  `vae.pretrain_dataset` says; they are not transitions). The bag trainer has only what the actors
  recorded: it fits once that many frames are on disk, and the transitions recorded so far stay in
  its replay buffer.
- `rl.updates_per_step` gradient updates per transition, from transition `rl.learning_starts` on.
- An online refit (`vae.refit_steps` Adam steps, then the buffer re-encoded) when a transition count
  in `vae.refit_schedule` is reached. A refit that came due before the VAE existed is not run: the
  pretraining that follows covers it. Several that come due at once (a bag trainer that reads many
  bags in one go) are one refit.
"""
from __future__ import annotations

from .config import LearnConfig


class Schedule:
    def __init__(self, cfg: LearnConfig):
        self.uses_vae = cfg.uses_vae
        self.pretrain_images = int(cfg.vae.pretrain_images) if cfg.uses_vae else 0
        self.pretrain_steps = int(cfg.vae.pretrain_steps)
        self.refit_steps = int(cfg.vae.refit_steps)
        self.refit_schedule = tuple(cfg.vae.refit_schedule)
        self.learning_starts = int(cfg.rl.learning_starts)
        self.updates_per_step = float(cfg.rl.updates_per_step)

    def updates_earned(self, before: int, after: int) -> float:
        """Gradient updates earned by transitions before+1 .. after (counts since the start)."""
        return self.updates_per_step * max(0, after - max(before, self.learning_starts - 1))

    def refit_every(self, step: int) -> int | None:
        """The refit period in force at transition `step` (None: no refits yet)."""
        every = None
        for start, n in self.refit_schedule:
            if step >= start:
                every = n
        return every

    def refit_due(self, before: int, after: int) -> bool:
        """A refit came due at some transition count in before+1 .. after (a refit is due after
        transition n >= 1 when n is a multiple of the period in force at n). The spans are a bag's
        transitions at most a few thousand: counted one by one."""
        if not self.uses_vae:
            return False
        for n in range(max(before + 1, 1), after + 1):
            every = self.refit_every(n)
            if every is not None and n % every == 0:
                return True
        return False
