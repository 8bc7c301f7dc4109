"""The one strace command line the device runs, so producer and parser agree.

The parser in :mod:`sandbox.monitor.parser` understands exactly the output of
this argv (and tolerates variations such as ``[pid N]`` prefixes or missing
``-Y``).  Why each option:

``-f``
    Follow forks, clones and threads: firmware hides work in children.
``-q``
    Drop "attached/detached" chatter.  Not ``-qq``: that would also drop the
    ``+++ exited with N +++`` lines the process tree needs.
``-o FILE``
    One file for every task.  strace then prefixes each line with the task
    id column (``1234  ``), which is how the parser attributes lines.
``-ttt``
    Host epoch seconds with microseconds; mapped to device time later.
    strace must not carry the device clock library itself, or these become device time.
``-yy``
    Decode fds: paths (``3</data/.../contacts2.db>``, also the fd an open
    *returns*, which resolves relative paths and symlinks) and socket
    endpoints (``5<TCP:[10.0.0.2:40000->1.2.3.4:443]>``), which is how a
    ``write`` is known to go to a TCP/UDP socket and where, and which device
    port it leaves from: the client port the capture and the fakenet see,
    so a flow is attributed to its socket, not just to whoever reached the
    same address at about the same time.
``-Y``
    Print each task's command name next to its id (``1234<sysoper>``), so
    the report can name processes, including after prctl(PR_SET_NAME).
``-s 256``
    Long enough for ``content --uri content://...`` argv entries; file names
    are never truncated by strace.  Payload bytes are not needed (the
    return value gives the byte count), so larger only costs disk.
``-e signal=`` :data:`FATAL_SIGNALS`
    Most signal deliveries are noise for attribution, but strace prints
    ``+++ killed by SIG... +++`` only for signals in this set (with
    ``signal=none`` a process killed by the OOM killer or by firmware just
    stops appearing, and when the root process dies so, strace re-raises
    the signal on itself without a line, which looks like a killed tracer).
    So the set is the signals that usually end a process; their deliveries,
    rare, print as ``--- SIG... ---`` lines the parser skips.  Normal exits
    are always printed.
``-e trace=...``
    See :data:`TRACED_SYSCALLS`.  ``read`` is deliberately absent (far too
    many calls; opening a store is the evidence).  ``write``/``writev`` are
    traced because Go and Java write to sockets with them; the parser keeps
    only those whose fd decoration is TCP/UDP.  ``close`` is not traced; the
    parser forgets an fd's connect destination when the fd number is reused
    by an open or another connect instead.  A ``?`` prefix makes strace
    accept a name the architecture lacks (arm64 has no open/fork/vfork).
``--seccomp-bpf``
    Only traced syscalls stop the tracee.  Measured here: 200k untraced
    ``read`` calls took 16 s under plain ``-f`` and 0.08 s with it.  Costs,
    documented so nobody is surprised: strace sets PR_SET_NO_NEW_PRIVS on the
    tracee (setuid binaries will not gain privilege; firmware can also see
    ``NoNewPrivs: 1`` / ``Seccomp: 2`` in /proc/self/status, though
    ``TracerPid`` already betrays ptrace), it implies ``--kill-on-exit``
    (tracees die with strace, which suits a sandbox), it needs ``-f`` and
    cannot be used with ``-p``.  If the kernel refuses the filter strace
    falls back to ordinary tracing.  Pass ``seccomp_bpf=False`` to opt out.
"""

from __future__ import annotations

from collections.abc import Sequence

TRACED_SYSCALLS: tuple[str, ...] = (
    # process tree
    "execve",
    "execveat",
    "clone",
    "?clone3",
    "?fork",
    "?vfork",
    # opening the canary stores
    "?open",
    "openat",
    "?openat2",
    # network
    "connect",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "write",
    "writev",
    "?sendfile",
    "?sendfile64",
)
"""Syscalls strace is asked to trace (``?`` = fine if the arch lacks it)."""

DEFAULT_STRING_LIMIT = 256

FATAL_SIGNALS = "KILL,TERM,INT,HUP,QUIT,SEGV,ABRT,BUS,ILL,FPE,SYS,PIPE,XCPU,XFSZ"
"""``-e signal=`` set: deaths by these print ``+++ killed by SIG... +++``."""


def trace_expression(syscalls: Sequence[str] = TRACED_SYSCALLS) -> str:
    """The ``-e trace=`` value for ``syscalls``."""
    if not syscalls:
        raise ValueError("at least one syscall must be traced")
    return "trace=" + ",".join(syscalls)


def _common_options(strace: str, output: str, *, comm: bool, string_limit: int, signals: str) -> list[str]:
    """What every trace shares, so one parser reads them all."""
    argv = [strace, "-f", "-q", "-o", output, "-ttt", "-yy"]
    if comm:
        argv.append("-Y")
    return argv + ["-s", str(string_limit), "-e", "signal=" + signals, "-e", trace_expression()]


def strace_options(
    output: str,
    *,
    strace: str = "strace",
    seccomp_bpf: bool = True,
    string_limit: int = DEFAULT_STRING_LIMIT,
) -> list[str]:
    """strace and its options, up to (not including) the ``--`` before the command.

    For wrappers that add options of their own (``-u USER``) before ``--``.
    """
    if not output:
        raise ValueError("output path must not be empty")
    if string_limit < 1:
        raise ValueError("string_limit must be positive")
    argv = _common_options(strace, output, comm=True, string_limit=string_limit, signals=FATAL_SIGNALS)
    if seccomp_bpf:
        argv.append("--seccomp-bpf")
    return argv


def strace_argv(
    command: Sequence[str],
    output: str,
    *,
    strace: str = "strace",
    seccomp_bpf: bool = True,
    string_limit: int = DEFAULT_STRING_LIMIT,
) -> list[str]:
    """Argv that runs ``command`` under strace, writing the trace to ``output``.

    ``output`` is a path where strace runs (inside the device).  ``command``
    is placed after ``--`` so its own options never reach strace.
    """
    if not command:
        raise ValueError("command must not be empty")
    options = strace_options(output, strace=strace, seccomp_bpf=seccomp_bpf, string_limit=string_limit)
    return [*options, "--", *command]


def strace_attach_argv(
    pids: Sequence[int],
    output: str,
    *,
    strace: str = "strace",
    comm: bool = True,
    string_limit: int = DEFAULT_STRING_LIMIT,
) -> list[str]:
    """Argv that attaches to running ``pids`` (Android apps, forked by zygote).

    Same options as :func:`strace_argv` so the same parser reads the trace,
    except ``--seccomp-bpf`` (strace refuses it with ``-p``) and, when
    ``comm`` is false, ``-Y`` (older Android strace builds lack it; the parser
    tolerates its absence).  ``-ttt`` here is the device's own wall clock.
    """
    if not pids:
        raise ValueError("at least one pid is required")
    if any(int(p) <= 0 for p in pids):
        raise ValueError("pids must be positive")
    if not output:
        raise ValueError("output path must not be empty")
    argv = _common_options(strace, output, comm=comm, string_limit=string_limit, signals="none")
    for pid in pids:
        argv += ["-p", str(int(pid))]
    return argv
