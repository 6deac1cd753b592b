"""Bundles: a directory of files as one self-checking byte string, to send in one DDS message.

rig sends two kinds of directory across hosts (docs/interfaces.md, "Across hosts"): a checkpoint's
inference part (trainer -> actors) and a closed episode bag (actor -> learner). Both travel as a
bundle in the `data` of a `std_msgs/UInt8MultiArray`:

    b'RIGBNDL1' | header length (8 bytes, little-endian) | header (JSON, UTF-8) | the files' bytes

The header names the bundle (`kind`, `name`, and what its sender adds) and lists each file with its
size and SHA-256, in the order their bytes follow. `unpack` refuses anything that is not exactly
that (a wrong magic, a truncated or padded payload, a file whose checksum differs, a path that
would leave the bundle's directory) with a `BundleError` saying what is wrong, and `write_dir`
makes the directory appear whole or not at all (written under a hidden name, fsynced, renamed).
No ROS here: the nodes convert with `to_msg_data`/`from_msg_data`.
"""
from __future__ import annotations

import array
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path, PurePosixPath

MAGIC = b'RIGBNDL1'
_LENGTH = struct.Struct('<Q')
MAX_HEADER_BYTES = 1 << 20   # a header lists files: far below this; more is not a bundle


class BundleError(ValueError):
    """Bytes that are not a whole, intact bundle; the message says why."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(kind: str, name: str, files: dict[str, bytes], **meta) -> bytes:
    """One bundle of `files` ({relative path: bytes}); `meta` goes into the header as it is (JSON)."""
    _check_name(name)
    for rel in files:
        _check_relative(rel)
    header = {'kind': kind, 'name': name, **meta,
              'files': [{'name': rel, 'size': len(data), 'sha256': sha256(data)} for rel, data in files.items()]}
    head = json.dumps(header, sort_keys=True).encode()
    return b''.join([MAGIC, _LENGTH.pack(len(head)), head, *files.values()])


def read_dir(path) -> dict[str, bytes]:
    """Every file under directory `path`, {relative path: bytes}, in name order."""
    path = Path(path)
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob('*')) if p.is_file()}


def pack_dir(kind: str, path, **meta) -> bytes:
    """A bundle of every file under directory `path` (named by its last component)."""
    return pack(kind, Path(path).name, read_dir(path), **meta)


def header_of(data: bytes) -> dict:
    """The header alone (checks magic and header, not the files)."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _LENGTH.size or bytes(view[:len(MAGIC)]) != MAGIC:
        raise BundleError(f'not a rig bundle ({len(view)} bytes, no {MAGIC.decode()} magic)')
    (length,) = _LENGTH.unpack_from(view, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    if length > MAX_HEADER_BYTES or start + length > len(view):
        raise BundleError(f'truncated bundle: a header of {length} bytes announced, '
                          f'{len(view) - start} bytes follow')
    try:
        header = json.loads(bytes(view[start:start + length]))
    except ValueError as exc:
        raise BundleError(f'bundle header is not JSON ({exc})') from None
    if not isinstance(header, dict) or not isinstance(header.get('files'), list) \
            or not isinstance(header.get('name'), str) or not isinstance(header.get('kind'), str):
        raise BundleError('bundle header lacks kind, name or files')
    header['_payload_offset'] = start + length
    return header


def unpack(data: bytes, kind: str | None = None) -> tuple[dict, dict[str, bytes]]:
    """(header, {relative path: bytes}) of a whole, intact bundle, else BundleError.
    `kind`: the kind expected (another is refused)."""
    header = header_of(data)
    if kind is not None and header['kind'] != kind:
        raise BundleError(f"bundle {header['name']!r} is a {header['kind']!r}, expected a {kind!r}")
    _check_name(header['name'])
    view = memoryview(data)
    offset = header.pop('_payload_offset')
    try:
        total = sum(int(f['size']) for f in header['files'])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"bundle {header['name']!r}: a file entry lacks its size") from None
    if offset + total != len(view):
        raise BundleError(f"bundle {header['name']!r} is {'truncated' if offset + total > len(view) else 'padded'}: "
                          f'its files make {total} bytes, {len(view) - offset} follow the header')
    files = {}
    for entry in header['files']:
        rel = entry.get('name')
        _check_relative(rel)
        blob = bytes(view[offset:offset + int(entry['size'])])
        offset += int(entry['size'])
        if sha256(blob) != entry.get('sha256'):
            raise BundleError(f"bundle {header['name']!r}: {rel} is corrupt (checksum mismatch)")
        files[rel] = blob
    return header, files


def write_dir(files: dict[str, bytes], dest) -> Path:
    """Write `files` as directory `dest`, atomically: under a hidden name beside it, each file fsynced,
    then renamed. An existing `dest` is replaced. Returns `dest`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f'.{dest.name}.incoming-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for rel, blob in files.items():
            _check_relative(rel)
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, 'wb') as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
        if dest.exists():
            old = dest.parent / f'.{dest.name}.old-{os.getpid()}'
            shutil.rmtree(old, ignore_errors=True)
            os.rename(dest, old)
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def dir_digest(path) -> str:
    """`files_digest` of a directory on disk: the identity of a bag that `pack_dir` sent and
    `write_dir` wrote, the same on both hosts."""
    return files_digest(read_dir(path))


def files_digest(files: dict[str, bytes]) -> str:
    """SHA-256 over files' relative names and contents, in name order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b'\0')
        h.update(sha256(files[rel]).encode())
    return h.hexdigest()


def to_msg_data(data: bytes) -> array.array:
    """Bytes as rclpy takes a `uint8[]` field without a per-byte copy loop."""
    return array.array('B', data)


def from_msg_data(data) -> bytes:
    """A received `uint8[]` field (array.array from rclpy, or bytes/list) as bytes."""
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return bytes(data)
    return bytes(bytearray(data))


def _check_name(name) -> None:
    if not isinstance(name, str) or not name or name.startswith('.') or '/' in name or '\\' in name:
        raise BundleError(f'bundle name {name!r} is not a plain directory name')


def _check_relative(rel) -> None:
    if not isinstance(rel, str) or not rel:
        raise BundleError(f'bundle file name {rel!r} is not a relative path')
    parts = PurePosixPath(rel).parts
    if rel.startswith('/') or '..' in parts or '\\' in rel:
        raise BundleError(f'bundle file name {rel!r} would leave the bundle directory')


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
