"""Checkpoint directories: manifest.json + torch state dicts, written atomically.

Layout of a checkpoint directory:
    manifest.json   {format_version, spec, config, counters, files: {name: sha256}}
    vae.pt          ConvVAE state dict (+ optimiser)          [rig mode only]
    policy.pt       actor / critics / targets / optimiser state dicts

`spec` is what a consumer must agree with: task, arm, mode, algo, image_size, latent_dim,
action_dim, action_low/high, obs/goal feature dims. The directory is first written under a
temporary name in the same parent and renamed into place, so a reader never sees a half-written one.

The *inference part* of a checkpoint (`inference_files`) is what encoder and policy load: the VAE and
the actor, no critics, no optimiser state, with `inference_only: true` in its manifest. It is what the
trainer sends to actors on other hosts (docs/interfaces.md, "Across hosts"); it loads with
`InferenceModel.load` like a whole checkpoint, and `Learner.load` refuses it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
CHECKED_KEYS = ('task', 'arm', 'mode', 'image_size', 'latent_dim', 'action_dim')


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or corrupt."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint was trained for something other than what the caller expects."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_checkpoint(path, manifest: dict, blobs: dict) -> Path:
    """Write `blobs` ({filename: torch-serialisable object}) and the manifest atomically to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.tmp-', dir=path.parent))
    try:
        files = {}
        for name, obj in blobs.items():
            data = _to_bytes(obj)
            with open(tmp / name, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            files[name] = _sha256(data)
        manifest = dict(manifest, format_version=FORMAT_VERSION, files=files)
        with open(tmp / MANIFEST, 'w') as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        old = None
        if path.exists():
            old = path.parent / f'.{path.name}.old-{os.getpid()}'
            if old.exists():
                shutil.rmtree(old)
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def inference_files(path) -> dict[str, bytes]:
    """The inference part of checkpoint `path` as the files of a checkpoint directory ({name: bytes}):
    verified on the way (CheckpointError), the actor and VAE weights only, and a manifest saying so."""
    data = load_checkpoint(path)
    blobs = {'policy.pt': {'actor': data['policy']['actor']}}
    if 'vae' in data:
        blobs['vae.pt'] = {'vae': data['vae']['vae']}
    files = {name: _to_bytes(obj) for name, obj in blobs.items()}
    manifest = {k: v for k, v in data['manifest'].items() if k not in ('files', 'trainer')}
    manifest.update(inference_only=True, source=Path(path).name,
                    files={name: _sha256(blob) for name, blob in files.items()})
    return {MANIFEST: json.dumps(manifest, indent=2, sort_keys=True).encode(), **files}


def read_manifest(path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f'checkpoint {path} does not exist or is not a directory')
    mf = path / MANIFEST
    if not mf.is_file():
        raise CheckpointError(f'checkpoint {path} has no {MANIFEST} (not a rig_learn checkpoint, or half-written)')
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f'checkpoint {path}: {MANIFEST} is corrupt ({exc})') from exc
    for key in ('format_version', 'spec', 'config', 'files'):
        if key not in manifest:
            raise CheckpointError(f'checkpoint {path}: {MANIFEST} lacks {key!r}')
    if manifest['format_version'] != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {manifest['format_version']}, "
                              f'this code reads version {FORMAT_VERSION}')
    return manifest


def check_expected(spec: dict, expected: dict | None, where: str = '') -> None:
    """Raise CheckpointMismatch listing every key of `expected` that `spec` contradicts."""
    if not expected:
        return
    unknown = sorted(set(expected) - set(spec))
    if unknown:
        raise ValueError(f'expected: unknown key(s) {unknown}; checkpoint spec has {sorted(spec)}')
    diffs = [f'{k}: checkpoint has {spec[k]!r}, expected {v!r}' for k, v in expected.items()
             if v is not None and spec[k] != v]
    if diffs:
        raise CheckpointMismatch(f'checkpoint {where} does not fit: ' + '; '.join(diffs))


def load_checkpoint(path, expected: dict | None = None, map_location='cpu') -> dict:
    """Read and verify a checkpoint. Returns {'manifest', 'spec', 'config', 'counters', <file stem>: obj}.

    expected: e.g. {'image_size': 48, 'latent_dim': 16, 'action_dim': 2, 'task': 'reach'} ->
    CheckpointMismatch when any differs. CheckpointError for missing / corrupt files.
    """
    path = Path(path)
    manifest = read_manifest(path)
    check_expected(manifest['spec'], expected, str(path))
    out = {'manifest': manifest, 'spec': manifest['spec'], 'config': manifest['config'],
           'counters': manifest.get('counters', {})}
    for name, digest in manifest['files'].items():
        fp = path / name
        if not fp.is_file():
            raise CheckpointError(f'checkpoint {path}: missing file {name}')
        data = fp.read_bytes()
        if _sha256(data) != digest:
            raise CheckpointError(f'checkpoint {path}: {name} is corrupt (checksum mismatch)')
        try:
            out[Path(name).stem] = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is corruption
            raise CheckpointError(f'checkpoint {path}: cannot read {name} ({exc})') from exc
    return out
