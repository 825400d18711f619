"""A fingerprint of the input, hashed while it streams: no second read.

Each loader hands its :class:`InputFingerprint` the bytes it has just read, in row order:

* arrays (``.npy`` streamed, ``.npz``, ``.pt``, the built-in digits split, generated noise): the
  array bytes of rows ``start..stop-1`` exactly as read (before any scaling), after a header that
  names the dtype and the shape of one row, so the same bytes read as another dtype differ;
* folders and zips: for each file in the loader's sorted order, its relative name, its size in bytes
  and its contents; the same bytes the decoder reads, so no file is opened twice.

The digest is SHA-256 of that stream, covering rows ``0..N-1`` when every row was read once in
order. Re-reads of rows already hashed (a second pass) are ignored; a fingerprint whose rows were
not all read in order (a seeded subsample, a torchrun shard that does not start at row 0) says so
instead of giving a digest that would look like the whole input's. Under torchrun each process
hashes its own shard; :meth:`InputFingerprint.to_dict` combines the shards' digests in rank order
(a digest that depends on the process count, and says so).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass
class InputFingerprint:
    """SHA-256 of an input's rows as they are read, in order.

    ``scheme`` says what is hashed: ``"array-bytes"`` (rows of a numeric array, as stored) or
    ``"files"`` (name, size and contents of each file in sorted order). ``rows_hashed`` counts the
    rows hashed so far; ``first_row`` is where hashing began (0 unless the reader skipped rows).
    """

    scheme: str
    header: str = ""

    def __post_init__(self) -> None:
        self._digest = hashlib.sha256(f"isgame-{self.scheme}-v1|{self.header}|".encode())
        self.first_row: int | None = None
        self.next_row = 0
        self.gap = False  # a read started past the next row: rows were skipped

    def _accept(self, start: int, stop: int) -> bool:
        """Whether rows ``start..stop-1`` are the next ones to hash (re-reads and empty reads are not)."""
        if stop <= start:
            return False
        if self.first_row is None:
            self.first_row, self.next_row = start, start
        if start == self.next_row:
            self.next_row = stop
            return True
        if start > self.next_row:
            self.gap = True
        return False  # a re-read of rows already hashed, or a read past a gap

    def add_rows(self, start: int, stop: int, data) -> None:
        """Hash rows ``start..stop-1`` given as one buffer (a C-contiguous numpy array or bytes)."""
        if self._accept(start, stop):
            self._digest.update(memoryview(data).cast("B") if not isinstance(data, bytes) else data)

    def add_files(self, start: int, files: list[tuple[str, bytes]]) -> None:
        """Hash the files of rows ``start..start+len(files)-1``: (relative name, contents) each."""
        if self._accept(start, start + len(files)):
            for name, data in files:
                self._digest.update(f"{name}\0{len(data)}\0".encode())
                self._digest.update(data)

    def covers(self, num_samples: int) -> bool:
        """Whether rows 0..num_samples-1 were all hashed once, in order, and nothing more."""
        return self.first_row == 0 and not self.gap and self.next_row == num_samples

    def hexdigest(self) -> str:
        return self._digest.copy().hexdigest()

    def to_dict(self, num_samples: int) -> dict[str, object]:
        """``{"scheme", "rows", "sha256"}``; ``sha256`` is None (and ``why`` says why) unless rows
        0..num_samples-1 were hashed in order; under torchrun, the shards' digests combined."""
        from isgame.scoring.runtime.distributed import current_group

        group = current_group()
        if group.world_size > 1:
            return self._combined(group, num_samples)
        if not self.covers(num_samples):
            return {"scheme": self.scheme, "rows": num_samples, "sha256": None,
                    "why": f"rows {self.first_row}..{self.next_row - 1} hashed in order, not all {num_samples}"}
        return {"scheme": self.scheme, "rows": num_samples, "sha256": self.hexdigest()}

    def _combined(self, group, num_samples: int) -> dict[str, object]:
        """SHA-256 over every rank's (first row, next row, digest), in rank order."""
        import torch

        from isgame.scoring.runtime.distributed import all_gather_rows

        local = torch.tensor([list(bytes.fromhex(self.hexdigest()))
                              + list((self.first_row or 0).to_bytes(8, "little"))
                              + list(self.next_row.to_bytes(8, "little")) + [int(self.gap)]], dtype=torch.uint8)
        rows = all_gather_rows(local.repeat(group.shard(group.world_size)[1] - group.shard(group.world_size)[0], 1),
                               group.world_size)
        combined = hashlib.sha256(rows.numpy().tobytes()).hexdigest()
        return {"scheme": f"{self.scheme}, {group.world_size} shards combined", "rows": num_samples,
                "sha256": combined}
