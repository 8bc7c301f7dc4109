"""Syscall monitor: which firmware process read the canary stores, and which
process connected where and sent how much.

Pure logic over text, along one path.  :mod:`.strace_cmd` builds the
strace argv the device runs; :mod:`.parser` streams that trace line by line
(lexical pieces in :mod:`.syntax`) and hands each complete call to
:mod:`.syscalls`, which yields :mod:`.events` (addresses read by
:mod:`.addresses`, canary stores named by :mod:`.stores`);
:mod:`.summary`'s builder folds events into per-process state
(:mod:`.state`, time records in :mod:`.activity`) and freezes it into a
:class:`Summary` of :mod:`.processes` records: a process tree with
per-process store reads and destinations.  Another layer runs strace in
the container and maps host time to device time.
"""

from .events import (
    CANARY_STORES,
    CanaryStore,
    Comm,
    Connect,
    Event,
    Exec,
    Exit,
    Fork,
    Open,
    Send,
)
from .parser import ParseStats, StraceParser, parse_file, parse_lines
from .processes import Ancestor, Destination, ProcessInfo, StoreAccess
from .stores import canary_store_for_path, content_command_store
from .strace_cmd import TRACED_SYSCALLS, strace_argv
from .summary import (
    ConnectionRow,
    StoreReader,
    Summary,
    SummaryBuilder,
    summarize,
    summarize_file,
    summarize_lines,
)

__all__ = [
    "CANARY_STORES",
    "TRACED_SYSCALLS",
    "Ancestor",
    "CanaryStore",
    "Comm",
    "Connect",
    "ConnectionRow",
    "Destination",
    "Event",
    "Exec",
    "Exit",
    "Fork",
    "Open",
    "ParseStats",
    "ProcessInfo",
    "Send",
    "StoreAccess",
    "StoreReader",
    "StraceParser",
    "Summary",
    "SummaryBuilder",
    "canary_store_for_path",
    "content_command_store",
    "parse_file",
    "parse_lines",
    "strace_argv",
    "summarize",
    "summarize_file",
    "summarize_lines",
]
