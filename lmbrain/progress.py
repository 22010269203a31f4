"""Progress of long work and the flags of the run log's records.

``FILE_ONLY`` and ``PROGRESS`` are ``extra`` flags of log records: a record with ``FILE_ONLY`` goes to run.log only;
one with ``PROGRESS`` is also shown on a terminal without a progress bar (stderr not a TTY).
"""

from __future__ import annotations

#: ``extra`` flag of a log record written to run.log only
FILE_ONLY = "lmbrain_file_only"
#: ``extra`` flag of a progress line, shown on stderr where no progress bar is (not a TTY) and always in run.log
PROGRESS = "lmbrain_progress"
