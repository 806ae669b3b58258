"""The ledger lake: validated ledger rows kept as month partitions of Parquet, with a manifest.

Layout of a lake folder::

    manifest.json                       the single commit point (replaced atomically)
    partitions/YYYY-MM/rows-<sha>.parquet  one file per ship_date month, rows in screening order
    partitions/YYYY-MM/ids-<sha>.parquet   its id index: shipment_id, id_hash, row_hash, shipped
    quarantine/q-<generation>-<sha>.parquet  rows rejected by one ingest, with their reason
    .staging/                           work files of a running ingest (removed when it ends)

A lake in an object store (:mod:`~pipeline.lake.store`) has the same files, plus
``manifests/g-<generation>.json``: there the commit is the conditional creation of that file,
and ``manifest.json`` is a copy of the latest, written after it
(:func:`~pipeline.lake.reader.read_manifest`); work files stay on local disk.

Files are never modified in place: a partition that gains or loses rows is written as a new
file, the manifest is replaced with :func:`os.replace`, and the files it supersedes are listed
in the manifest's ``retired`` and kept for :data:`KEEP_GENERATIONS` more commits and at least
:data:`RETAIN_SECONDS`, so that readers of earlier generations can finish (see :class:`Lake`);
later commits remove them. A crash at any point leaves the previous manifest, and every file it
names, untouched; the next ingest removes what the crashed one left behind. The manifest
records each file's SHA-256, size and Parquet footer digest: reads check size, footer and row
count, :func:`verify` every byte.

Ingest rules (one call of :func:`ingest`):

- Rows are validated by :mod:`pipeline.ingest` (same checks, same reasons).
- Among the rows of one call, repeated ``shipment_id`` values are resolved as
  :func:`pipeline.ingest.read_ledgers` does: an exact repeat is quarantined as a duplicate (the
  first copy, in file order, is kept); ids that repeat with different content are all
  quarantined.
- Against the rows already in the lake: the same id with identical content is a no-op
  (``duplicates``); a ``shipped`` row replaces a ``pending`` row of the same id
  (``superseded``); any other difference is quarantined.

"Identical content" compares the stored (validated, normalized) values of every ledger column,
so ``"us"`` and ``"US"`` are the same destination and ``"S-1 "`` is ``"S-1"``, as in ``read_ledgers``.
Files written before the :data:`ADDED_COLUMNS` existed lack them: reads give them as null, and
a row without them keeps its row hash, so the same file ingested again is still a no-op.

Modules: :mod:`~pipeline.lake.store` (where the files live: a folder or an object store),
:mod:`~pipeline.lake.manifest` (manifest, generations, retention, locking),
:mod:`~pipeline.lake.schema` (file schemas), :mod:`~pipeline.lake.reader` (:class:`Lake`,
read-time checks), :mod:`~pipeline.lake.intake` (:func:`ingest`: staging and commit) with
:mod:`~pipeline.lake.sources` (input files), :mod:`~pipeline.lake.hashing`,
:mod:`~pipeline.lake.dedupe` (repeated ids) and :mod:`~pipeline.lake.partitions` (writing
partitions), :mod:`~pipeline.lake.integrity` (:func:`verify`).
"""
from pipeline.lake.dedupe import REASON_ALREADY_SHIPPED, REASON_LAKE_CONFLICT
from pipeline.lake.integrity import Verification, verify
from pipeline.lake.intake import CRASH_ENV, IngestReport, ingest
from pipeline.lake.manifest import (KEEP_GENERATIONS, LAKE_FORMAT, LAKE_VERSION, LOCK, MANIFEST, RETAIN_SECONDS,
                                    STAGING, LakeError, LakeWarning)
from pipeline.lake.reader import Lake, Partition
from pipeline.lake.schema import (ADDED_COLUMNS, INDEX_SCHEMA, QUARANTINE_SCHEMA, ROW_HASH_COLUMNS, STORED_COLUMNS,
                                  STORED_SCHEMA)
from pipeline.lake.sources import BATCH_ROWS, CSV_BLOCK_BYTES

__all__ = [
    "ADDED_COLUMNS", "BATCH_ROWS", "CRASH_ENV", "CSV_BLOCK_BYTES", "INDEX_SCHEMA", "KEEP_GENERATIONS",
    "LAKE_FORMAT", "LAKE_VERSION", "LOCK", "MANIFEST", "QUARANTINE_SCHEMA", "REASON_ALREADY_SHIPPED",
    "REASON_LAKE_CONFLICT", "RETAIN_SECONDS", "ROW_HASH_COLUMNS", "STAGING", "STORED_COLUMNS", "STORED_SCHEMA",
    "IngestReport", "Lake", "LakeError", "LakeWarning", "Partition", "Verification", "ingest", "verify",
]
