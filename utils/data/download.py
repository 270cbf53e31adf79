"""Download MAESTRO v2.0.0: resumable HTTP download, md5 check and zip extraction.

All functions take the URL and checksum as parameters, so they work against any HTTP server.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

MAESTRO_V2_URL = "https://storage.googleapis.com/magentadata/datasets/maestro/v2.0.0/maestro-v2.0.0.zip"
MAESTRO_V2_MD5 = "7a6c23536ebcf3f50b1f00ac253886a7"  # as listed by AudioLoader for this archive
MAESTRO_V2_FOLDER = "maestro-v2.0.0"  # top-level folder inside the archive

_CHUNK_BYTES = 1 << 20


class DownloadError(OSError):
    """A download that failed (HTTP error, connection lost, unexpected server answer)."""


class ChecksumError(ValueError):
    """A downloaded file whose md5 differs from the expected one."""


class ArchiveError(ValueError):
    """A zip archive that cannot be extracted (corrupt, or with paths escaping the target folder)."""


def md5sum(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float):
    """Open ``url``, asking for bytes from ``offset`` on; returns the response or None if already complete."""
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # range starts at the end: the partial file is complete
            return None
        raise DownloadError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"{url}: cannot connect ({error})") from error


def download_file(url: str, destination: str | os.PathLike, md5: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``destination``, resuming a previous partial download, and check its md5.

    Bytes arrive in ``<destination>.part``; an existing .part file is continued with an HTTP Range
    request (restarted if the server ignores ranges). The finished file is checked against ``md5``
    (if given) and renamed to ``destination``. A destination that already exists with the right md5
    is not downloaded again. On an md5 mismatch the .part file is deleted and :class:`ChecksumError`
    is raised; network/HTTP failures raise :class:`DownloadError` and keep the .part file for resuming.
    """
    destination = Path(destination)
    if destination.is_file() and (md5 is None or md5sum(destination) == md5):
        log.info("%s already downloaded", destination)
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0

    response = _open(url, offset, timeout)
    if response is not None:
        with response:
            resumed = offset > 0 and response.status == 206
            if not resumed:
                offset = 0  # server sent the whole file
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as output, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=destination.name
            ) as progress:
                try:
                    for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                        output.write(chunk)
                        progress.update(len(chunk))
                except OSError as error:
                    raise DownloadError(f"{url}: connection lost after {output.tell()} bytes ({error}); "
                                        f"run again to resume") from error
            if total is not None and part.stat().st_size < total:
                raise DownloadError(f"{url}: incomplete download ({part.stat().st_size} of {total} bytes); "
                                    f"run again to resume")

    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise ChecksumError(f"{destination.name}: md5 {actual} does not match the expected {md5}; "
                                f"the download was deleted, run again")
    os.replace(part, destination)
    return destination


def extract_zip(archive: str | os.PathLike, target_dir: str | os.PathLike) -> list[Path]:
    """Extract ``archive`` into ``target_dir`` and return the top-level entries it created.

    The archive is unpacked into a temporary folder inside ``target_dir`` and its top-level entries
    are then renamed into place, so an interrupted extraction never leaves a half-filled dataset
    folder. Raises :class:`ArchiveError` for a corrupt zip, a member path leaving the target folder,
    or a top-level entry that already exists.
    """
    archive, target_dir = Path(archive), Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target_dir, prefix=f".{archive.stem}.extracting."))
    try:
        try:
            with zipfile.ZipFile(archive) as zipped:
                members = zipped.infolist()
                for member in members:
                    resolved = (staging / member.filename).resolve()
                    if not resolved.is_relative_to(staging.resolve()):
                        raise ArchiveError(f"{archive.name}: member {member.filename!r} would be written "
                                           f"outside {target_dir}")
                for member in tqdm(members, desc=f"extracting {archive.name}", unit="file"):
                    zipped.extract(member, staging)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise ArchiveError(f"{archive.name}: corrupt zip archive ({error})") from error
        created = []
        for entry in sorted(staging.iterdir()):
            final = target_dir / entry.name
            if final.exists():
                raise ArchiveError(f"{final}: already exists; remove it before extracting {archive.name}")
            os.replace(entry, final)
            created.append(final)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_maestro(
    root: str | os.PathLike,
    url: str = MAESTRO_V2_URL,
    md5: str | None = MAESTRO_V2_MD5,
    folder: str = MAESTRO_V2_FOLDER,
    keep_archive: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Make sure ``root/<folder>`` exists: download the archive into ``root``, verify, extract.

    Does nothing when the folder is already there. The archive (about 100 GB for MAESTRO v2.0.0) is
    deleted after a successful extraction unless ``keep_archive``. Returns ``root/<folder>``.
    """
    root = Path(root)
    dataset_dir = root / folder
    if dataset_dir.is_dir():
        return dataset_dir
    archive_name = url.rstrip("/").rsplit("/", 1)[-1] or f"{folder}.zip"
    archive = download_file(url, root / archive_name, md5=md5, timeout=timeout)
    extract_zip(archive, root)
    if not dataset_dir.is_dir():
        raise ArchiveError(f"{archive.name}: archive has no top-level folder {folder!r}")
    if not keep_archive:
        archive.unlink()
    return dataset_dir
