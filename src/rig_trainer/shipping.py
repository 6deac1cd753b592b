"""Across hosts without a shared filesystem: episodes go to the learner, checkpoints come back (no ROS).

Each actor host records its episodes locally, as on one host, and ships every closed bag to the
learner host as a bundle (`rig_base.bundles`), sending it again until the learner acknowledges it.
Store and forward keeps every episode through a link loss or a restart on either side: the bag stays
on the actor's disk until acknowledged, and the learner writes it whole or not at all (docs/
interfaces.md, "Across hosts", says why this and not recorders on the learner host).

- `Outbox` (actor host): which closed bags of this actor are still to be acknowledged, which are due
  to be (re)sent, and a ledger file of the acknowledged ones (`.shipped_<actor>`: one `name digest`
  line each, fsynced), so a restarted actor sends only what the learner may lack.
- `Inbox` (learner host): writes a received bag into the data directory under a hidden name and
  renames it into place (the trainer sees closed bags only), and answers `stored` or, for a bag it
  already has with the same content, `duplicate`; a bag of that name with other content is refused.
  Nothing is counted twice: the trainer ingests a bag by name once (its ledger), and a resent bag
  never becomes a second copy.
- `CheckpointInbox` (actor host): keeps the newest received checkpoints (the inference part) on the
  actor's disk, verified, for encoder and policy to load by path.
- `LearnerWatch` (actor host): whether the learner host is heard, and so whether practice is held.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from rig_base import bundles
from rig_learn import checkpoint as ckpt
from rig_trainer.bags import list_closed_bags

EPISODE = 'episode'
CHECKPOINT = 'checkpoint'


@dataclasses.dataclass
class Ack:
    """The learner's answer to one bag (JSON on `rig/episode_acks`)."""
    name: str
    digest: str
    status: str            # 'stored' | 'duplicate' | 'refused'
    reason: str = ''

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'Ack':
        try:
            d = json.loads(text)
            return cls(str(d['name']), str(d['digest']), str(d['status']), str(d.get('reason', '')))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'malformed episode acknowledgement {text[:80]!r}: {exc}') from None


class Outbox:
    """The actor's closed bags not yet acknowledged by the learner."""

    def __init__(self, data_dir, actor: str, resend_period_s: float = 5.0, max_in_flight: int = 4):
        self.data_dir = Path(data_dir)
        self.actor = actor
        self.resend_period_s = resend_period_s
        self.max_in_flight = max_in_flight
        self.ledger_path = self.data_dir / f'.shipped_{actor}'
        self.shipped: dict[str, str] = self._read_ledger()   # name -> digest
        self.in_flight: dict[str, float] = {}                 # name -> when last sent
        self.digests: dict[str, str] = {}                      # name -> digest, of bags seen
        self.refused: dict[str, str] = {}                      # name -> the learner's reason
        self.sends = 0
        self.pending_at_last_scan = 0                          # for status: no directory scan of its own

    def _read_ledger(self) -> dict[str, str]:
        if not self.ledger_path.exists():
            return {}
        out = {}
        for line in self.ledger_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:        # a line cut short by a crash is simply not acknowledged yet
                out[parts[0]] = parts[1]
        return out

    def pending(self) -> list[Path]:
        """This actor's closed bags that the learner has not acknowledged, oldest first."""
        prefix = f'{self.actor}_'
        return [p for p in list_closed_bags(self.data_dir)
                if p.name.startswith(prefix) and p.name not in self.shipped and p.name not in self.refused]

    def due(self, now: float) -> list[Path]:
        """Bags to send now: those in flight for longer than resend_period_s, then new ones, up to
        max_in_flight in flight."""
        out = []
        pending = self.pending()
        self.pending_at_last_scan = len(pending)
        names = {p.name for p in pending}
        for name in [n for n in self.in_flight if n not in names]:   # acknowledged or gone meanwhile
            del self.in_flight[name]
        for p in pending:
            sent = self.in_flight.get(p.name)
            if sent is not None and now - sent >= self.resend_period_s:
                out.append(p)
        room = self.max_in_flight - len(self.in_flight)
        out += [p for p in pending if p.name not in self.in_flight][:max(0, room)]
        return out

    def bundle(self, bag: Path, now: float) -> bytes:
        """The bag as a bundle, marked as sent at `now`."""
        files = bundles.read_dir(bag)
        digest = bundles.files_digest(files)
        self.digests[bag.name] = digest
        self.in_flight[bag.name] = now
        self.sends += 1
        return bundles.pack(EPISODE, bag.name, files, actor=self.actor, digest=digest)

    def acknowledge(self, ack: Ack) -> str | None:
        """Take the learner's answer; returns a line to log for a refusal (None otherwise). Answers
        for other actors' bags, or for another content than what was sent, are ignored."""
        if not ack.name.startswith(f'{self.actor}_') or ack.name in self.shipped:
            return None
        if ack.digest != self.digests.get(ack.name):
            return None
        self.in_flight.pop(ack.name, None)
        if ack.status in ('stored', 'duplicate'):
            self.shipped[ack.name] = ack.digest
            with open(self.ledger_path, 'a') as f:
                f.write(f'{ack.name} {ack.digest}\n')
                f.flush()
                os.fsync(f.fileno())
            return None
        if ack.reason.startswith('conflict'):   # never accepted: stop sending it
            self.refused[ack.name] = ack.reason
        return f'learner refused {ack.name}: {ack.reason}'


class Inbox:
    """The learner's data directory, written by bundles from actors."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.counts = {'stored': 0, 'duplicate': 0, 'refused': 0}

    def receive(self, data: bytes) -> Ack:
        """Store one bundled bag (or recognise one already here); a bundle that is not a whole bag is
        refused, with the reason in the answer."""
        try:
            header, files = bundles.unpack(data, kind=EPISODE)
        except bundles.BundleError as exc:
            name, digest = _name_and_digest(data)
            return self._count(Ack(name, digest, 'refused', f'corrupt: {exc}'))
        name, digest = header['name'], bundles.files_digest(files)
        if header.get('digest') != digest:
            return self._count(Ack(name, str(header.get('digest')), 'refused', 'corrupt: digest mismatch'))
        if 'metadata.yaml' not in files:
            return self._count(Ack(name, digest, 'refused', 'corrupt: not a closed bag (no metadata.yaml)'))
        dest = self.data_dir / name
        if dest.exists():
            if bundles.dir_digest(dest) == digest:
                return self._count(Ack(name, digest, 'duplicate'))
            return self._count(Ack(name, digest, 'refused', f'conflict: another bag named {name} is already here'))
        bundles.write_dir(files, dest)
        return self._count(Ack(name, digest, 'stored'))

    def _count(self, ack: Ack) -> Ack:
        self.counts[ack.status] += 1
        return ack


def _name_and_digest(data: bytes) -> tuple[str, str]:
    """What a broken bundle says it is, where its header can be read (for the refusal's answer)."""
    try:
        header = bundles.header_of(data)
        return str(header.get('name', '?')), str(header.get('digest', ''))
    except bundles.BundleError:
        return '?', ''


class CheckpointInbox:
    """Checkpoints received from the trainer, kept on the actor's disk (the newest `keep`)."""

    def __init__(self, checkpoint_dir, keep: int = 3):
        self.dir = Path(checkpoint_dir)
        self.keep = keep
        self.latest: Path | None = self._newest()

    def _kept(self) -> list[Path]:
        """The checkpoints on disk, oldest received first (by arrival, not name: a learner started
        afresh numbers its checkpoints from 1 again)."""
        found = [p for p in self.dir.glob('*') if p.is_dir() and not p.name.startswith('.')
                 and (p / ckpt.MANIFEST).is_file()]
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def _newest(self) -> Path | None:
        kept = self._kept()
        return kept[-1] if kept else None

    def receive(self, data: bytes) -> Path:
        """Verify and store one checkpoint bundle; returns its local path. BundleError or
        CheckpointError say why one is refused (nothing is written then)."""
        header, files = bundles.unpack(data, kind=CHECKPOINT)
        if ckpt.MANIFEST not in files:
            raise bundles.BundleError(f"checkpoint bundle {header['name']!r} has no {ckpt.MANIFEST}")
        try:
            manifest = json.loads(files[ckpt.MANIFEST])
            listed = dict(manifest['files'])
        except (ValueError, KeyError, TypeError) as exc:
            raise ckpt.CheckpointError(f"checkpoint {header['name']}: {ckpt.MANIFEST} is corrupt ({exc})") from None
        for name, digest in listed.items():
            if name not in files or bundles.sha256(files[name]) != digest:
                raise ckpt.CheckpointError(f"checkpoint {header['name']}: {name} is missing or corrupt")
        dest = bundles.write_dir(files, self.dir / header['name'])
        ckpt.read_manifest(dest)   # as the nodes will read it
        self.latest = dest
        self._prune()
        return dest

    def _prune(self) -> None:
        for old in [p for p in self._kept() if p != self.latest][:-(self.keep - 1) or None]:
            shutil.rmtree(old, ignore_errors=True)


class LearnerWatch:
    """Practice is held while the learner host is not heard: before its first word, and once nothing
    has come from it for `hold_after_s` (its receiver's status comes at 1 Hz). `hold_after_s` <= 0
    never holds: the actor practises on with its newest checkpoint through an outage."""

    def __init__(self, hold_after_s: float):
        self.hold_after_s = hold_after_s
        self.last_heard: float | None = None

    def heard(self, now: float) -> None:
        self.last_heard = now

    def hold_reason(self, now: float) -> str:
        """'' when practice may go on, else why it is held (the same text while the cause lasts)."""
        if self.hold_after_s <= 0:
            return ''
        if self.last_heard is None:
            return 'waiting for the learner host (nothing heard from it yet)'
        if now - self.last_heard > self.hold_after_s:
            return f'the learner host has not been heard for over {self.hold_after_s:g} s (link down?)'
        return ''


def checkpoint_bundle(path) -> bytes:
    """The inference part of checkpoint `path` as a bundle (what the trainer publishes)."""
    path = Path(path)
    files = ckpt.inference_files(path)
    manifest = json.loads(files[ckpt.MANIFEST])
    return bundles.pack(CHECKPOINT, path.name, files, counters=manifest.get('counters', {}),
                        spec={k: manifest['spec'].get(k) for k in ckpt.CHECKED_KEYS})
