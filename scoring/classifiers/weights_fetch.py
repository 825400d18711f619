"""The one place isgame touches the network: :func:`fetch_weights` downloads a known weights file.

Nothing else in isgame downloads, and this only runs when called (``isgame weights fetch NAME``).
A download streams into ``<cache dir>/<file>.part``; a cut connection keeps that file, and the
next call resumes it with an HTTP ``Range`` request. The finished file is hashed, and only a file
whose SHA-256 matches the registry's (:mod:`weights_registry`) is moved into place, with
``os.replace``, so the cache never holds a partial or unverified file under its real name. Two
processes fetching the same file into the same folder at once are not supported.
"""

from __future__ import annotations

import http.client
import math
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from isgame.scoring.classifiers.weights_registry import (
    WeightsEntry,
    fetch_hint,
    file_sha256,
    hub_checkpoints_dir,
    weights_entry,
)
from isgame.scoring.errors import IsgameError, parameter

#: bytes per read from the connection (and per progress-bar step)
DOWNLOAD_CHUNK_BYTES = 1 << 20
#: seconds a connect or a read may stall before the download counts as cut
SOCKET_TIMEOUT_S = 60.0
#: the suffix of the partial file kept for resuming
PART_SUFFIX = ".part"


class WeightsDownloadError(IsgameError, OSError):
    """A download failed: no connection, an HTTP error, a cut connection or a hash mismatch."""


@dataclass(frozen=True)
class WeightsFetchResult:
    """What :func:`fetch_weights` did: the verified file at ``path`` and how it got there.

    ``downloaded`` is False when a verified copy was already there (no network was used);
    ``resumed_from_bytes`` is how much of a previous cut download was reused (0 if none).
    ``hash_checked`` is ``sha256`` or ``prefix`` (only the prefix in the file name is known).
    """

    name: str
    file_name: str
    path: Path
    url: str
    sha256: str
    size_bytes: int
    downloaded: bool
    resumed_from_bytes: int
    hash_checked: str

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "file_name": self.file_name, "path": str(self.path), "url": self.url,
                "sha256": self.sha256, "size_bytes": self.size_bytes, "downloaded": self.downloaded,
                "resumed_from_bytes": self.resumed_from_bytes, "hash_checked": self.hash_checked}


def fetch_weights(name: str, *, cache_dir: Path | str | None = None, progress: bool = True,
                  url: str | None = None) -> WeightsFetchResult:
    """Download the known weights file ``name`` (an entry or file name), check its hash, and cache it.

    ``cache_dir`` defaults to ``<torch.hub.get_dir()>/checkpoints``, where every loader looks first;
    ``url`` replaces the published address (a mirror); the hash checked is the registry's all the
    same. ``progress`` draws a bar on stderr. A verified copy already there is returned without
    any network use. Raises :class:`WeightsDownloadError` (one line) on failure: after a cut
    connection the ``.part`` file stays for the next call to resume; after a hash mismatch nothing
    is left behind.
    """
    entry = weights_entry(name)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else hub_checkpoints_dir()
    final = folder / entry.file_name
    source = url or entry.url
    if final.is_file():
        digest = file_sha256(final)
        if entry.matches(digest):
            return _result(entry, final, source, digest, downloaded=False, resumed_from=0)
        # A damaged or foreign file under the published name: the verified download replaces it below.
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsDownloadError(f"cannot create {folder} ({error.strerror}); choose a writable folder with "
                                   f"{parameter('cache_dir', 'DIR')}") from None
    part = folder / (entry.file_name + PART_SUFFIX)
    resumed_from = _download(entry, source, part, progress=progress)
    digest = file_sha256(part)
    if not entry.matches(digest):
        part.unlink(missing_ok=True)
        raise WeightsDownloadError(
            f"{entry.file_name} from {source} has SHA-256 {digest}, expected {entry.expected_hash()}"
            f"{'' if entry.sha256 else ' (prefix; the full hash is unknown)'}; the download was deleted and nothing "
            f"was written to {folder}"
        )
    _sync(part)
    os.replace(part, final)
    _sync_folder(folder)
    return _result(entry, final, source, digest, downloaded=True, resumed_from=resumed_from)


def _result(entry: WeightsEntry, path: Path, url: str, digest: str, *, downloaded: bool,
            resumed_from: int) -> WeightsFetchResult:
    return WeightsFetchResult(name=entry.name, file_name=entry.file_name, path=path, url=url, sha256=digest,
                              size_bytes=path.stat().st_size, downloaded=downloaded, resumed_from_bytes=resumed_from,
                              hash_checked=entry.hash_known)


def _download(entry: WeightsEntry, url: str, part: Path, *, progress: bool) -> int:
    """Complete ``part`` from ``url``, resuming what is there; returns how many bytes were reused."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "isgame-weights-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=SOCKET_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            return offset  # the server has no bytes past the .part: it is whole, and the hash decides
        raise WeightsDownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}; check the address, "
                                   f"or pass a mirror with {parameter('url', 'URL')}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise WeightsDownloadError(f"cannot reach {url} ({reason}); check the network, or pass a mirror with "
                                   f"{parameter('url', 'URL')}") from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored the range and sends the whole file: start the .part again
        elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink(missing_ok=True)
            raise WeightsDownloadError(f"{url} answered the resume of {entry.file_name} with another range "
                                       f"({response.headers.get('Content-Range')}); the partial file was deleted: "
                                       f"{fetch_hint(entry.name)} again to start over")
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        received = _stream(response, part, offset=offset, expected=expected, entry=entry, progress=progress)
    if expected is not None and received < expected:
        raise _cut(entry, url, part, offset + received, offset + expected)
    return offset


def _stream(response, part: Path, *, offset: int, expected: int | None, entry: WeightsEntry, progress: bool) -> int:
    """Append the response body to ``part`` (truncating it first when ``offset`` is 0); returns bytes received."""
    from isgame.scoring.runtime.progress import progress_bar

    total = offset + expected if expected is not None else (entry.size_bytes or 0)
    received = 0
    with open(part, "ab" if offset else "wb") as stream, progress_bar(
            f"fetching {entry.file_name}", total=total, batches=math.ceil(total / DOWNLOAD_CHUNK_BYTES),
            enabled=progress) as advance:
        advance(offset)
        while True:
            try:
                chunk = response.read(DOWNLOAD_CHUNK_BYTES)
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, OSError) as error:
                stream.flush()
                raise _cut(entry, response.geturl(), part, offset + received, total,
                           reason=type(error).__name__) from None
            if not chunk:
                return received
            try:
                stream.write(chunk)
            except OSError as error:
                raise WeightsDownloadError(f"cannot write {part} ({error.strerror}); the bytes so far are kept: free "
                                           f"space and {fetch_hint(entry.name)} again to resume") from None
            received += len(chunk)
            advance(len(chunk))


def _cut(entry: WeightsEntry, url: str, part: Path, done: int, total: int, *, reason: str = "connection closed"):
    """The one-line error for a cut download; the .part file stays for the next call to resume."""
    of_total = f" of {total}" if total else ""
    return WeightsDownloadError(
        f"the download of {entry.file_name} from {url} was cut ({reason}) after {done}{of_total} bytes; they are kept "
        f"in {part}: {fetch_hint(entry.name)} again to resume"
    )


def _sync(path: Path) -> None:
    """Flush a file's bytes to disk before it is renamed into place."""
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
