"""Device-side ADB daemon of the Honeyphone device twin.

Speaks the ADB transport protocol (AOSP ``protocol.txt``) over TCP so that a
stock ``adb`` host, or any library speaking to an adb server, sees a rooted
Android device: ``adb connect`` then ``shell`` (v1 and shell_v2, raw and
PTY), ``exec:``, ``sync:`` (push/pull/stat/ls, v1 and v2), ``root:`` and
friends, and ``tcp:``/``local*:`` streams for ``adb forward``.  Every
service mirrors what AOSP's adbd does, down to the raw PTY behind ``exec:``
and the mode bits of pushed files, because a firmware under analysis (or its
installer) must not be able to tell it is not on a phone.

Design, briefly: one :class:`Connection` (an asyncio protocol) per host
connection demultiplexes packets to :class:`Stream` objects; each stream
runs one service coroutine that :class:`Daemon` resolves.  A stream sends
at most one WRTE until the host answers OKAY, and answers a host WRTE with
OKAY only once the service has consumed it, so flow control is end to end.  Services never trust the host:
a malformed packet drops that connection with a log line, never the daemon.

The package, one module per concern:

* ``transport``: the connection, its packets, streams and flow control;
* ``services``: the daemon and the services a stream opens (shell v1/v2,
  ``exec:``, ``root:``/``unroot:``/``reboot:``/``remount:``, ``tcp:`` and
  ``local*:`` forwards);
* ``sync``: the ``sync:`` service (STAT/LIST/SEND/RECV, v1 and v2);
* ``process``: spawned children, PTYs and non-blocking fds;
* ``shellenv``: the environment an adb shell gets;
* ``main`` (run by ``__main__``): the command line and the event loop.

Every name is re-exported here, so ``twinrt.adbd.X`` works as it did when
this was one module.

Standard library only (runs on Debian bookworm's python3 inside the twin).
Entry point: ``python3 -m twinrt.adbd [--host 0.0.0.0] [--port 5555]``.
"""

from __future__ import annotations

from .transport import (  # noqa: F401
    ByteReader,
    CLOSE_GRACE,
    Connection,
    FALLBACK_BANNER_PROPS,
    FEATURES,
    MAX_QUEUED_WRITES,
    Service,
    Stream,
    StreamClosed,
)
from .process import (  # noqa: F401
    Child,
    HANGUP_GRACE,
    PTY_DRAIN_TIMEOUT,
    PTY_SETTLE,
    _fd_ready,
    _make_raw,
    _set_window_size,
    _take_controlling_tty,
    _wait_pty_input_drained,
    exit_status,
    read_fd,
    write_fd,
)
from .shellenv import (  # noqa: F401
    ANDROID_ENV,
    ANDROID_SHELL,
    DEVICE_HOME,
    FALLBACK_HOME,
    PASSTHROUGH_ENV,
    SHELL,
    SHELL_PATH,
    _ENV_KEY,
    _home_dir,
    _hostname,
    parse_env_lines,
    read_shell_env_file,
    shell_environment,
)
from .services import (  # noqa: F401
    Daemon,
    OUTPUT_CHUNK,
    REBOOT_BIN,
    REMOUNT_BIN,
    REMOUNT_MESSAGE,
    RESERVED_SOCKET_DIR,
    ROOT_MESSAGE,
    SOCKET_SPECS,
    UNROOT_MESSAGE,
    _cancel,
    connect_socket_spec,
)
from .sync import (  # noqa: F401
    LISTING_BATCH,
    PushTarget,
    SyncError,
    SyncSession,
    _mkdirs,
    _strerror,
)
from .main import (  # noqa: F401
    _amain,
    _configure_logging,
    _loop_exception_handler,
    main,
)
