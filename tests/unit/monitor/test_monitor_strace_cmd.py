"""strace_cmd tests: the argv the device runs strace with."""

from __future__ import annotations

import pytest

from sandbox.monitor import strace_cmd


def test_strace_argv_is_the_documented_one() -> None:
    argv = strace_cmd.strace_argv(["/system/bin/sysoper", "--daemon"], "/data/hp/trace.txt")
    assert argv == [
        "strace", "-f", "-q", "-o", "/data/hp/trace.txt", "-ttt", "-yy", "-Y",
        "-s", "256", "-e", "signal=KILL,TERM,INT,HUP,QUIT,SEGV,ABRT,BUS,ILL,FPE,SYS,PIPE,XCPU,XFSZ",
        "-e", "trace=execve,execveat,clone,?clone3,?fork,?vfork,?open,openat,?openat2,"
        "connect,sendto,sendmsg,sendmmsg,write,writev,?sendfile,?sendfile64",
        "--seccomp-bpf", "--", "/system/bin/sysoper", "--daemon",
    ]


def test_strace_argv_options() -> None:
    argv = strace_cmd.strace_argv(["x"], "o", strace="/usr/bin/strace", seccomp_bpf=False,
                                  string_limit=64)
    assert argv[0] == "/usr/bin/strace"
    assert "--seccomp-bpf" not in argv
    assert argv[argv.index("-s") + 1] == "64"
    assert argv[-2:] == ["--", "x"]
    with pytest.raises(ValueError):
        strace_cmd.strace_argv([], "o")
    with pytest.raises(ValueError):
        strace_cmd.strace_argv(["x"], "")
    with pytest.raises(ValueError):
        strace_cmd.strace_argv(["x"], "o", string_limit=0)
