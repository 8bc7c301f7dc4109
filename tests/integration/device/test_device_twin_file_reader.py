"""Reading a file that the twin keeps replacing, through the engine.

``file_reader`` reads the clock's state with ``get_archive``: the engine
stats the file, then streams it, and a replace in between gives a tar header
with the old size over the new file (cut short or padded).  Under load every
read for 10 s came back torn and failed an analysis (CI, 2026-12-08).  The
controller now publishes states of one size (``clockd._fixed_size``), so a
read is whole, old or new.  Real twin, real engine: a process in the twin
replaces the file as fast as it can, with the controller's own writer.
"""

from __future__ import annotations

import json
import shlex

import docker

from sandbox.clock.twin_clock import ClockState
from sandbox.device.twin import TwinHandle, file_reader

PATH = "/var/lib/honeyphone/test-state"
# States of varying length, replaced with the controller's own functions.
REWRITER = (
    "import json, itertools\n"
    "from twinrt.clockd import _fixed_size, _write_atomic\n"
    "from pathlib import Path\n"
    "for i in itertools.count():\n"
    "    s = {'real': 1.0, 'elapsed_s': float(i), 'reached': False, 'jumps': i, 'jumped_s': 0.0,\n"
    "         'errors': ['e' * (i % 97)]}\n"
    f"    _write_atomic(Path({PATH!r}), _fixed_size(json.dumps(s)))\n"
)


def test_a_state_replaced_while_read_is_read_whole(docker_engine: docker.DockerClient, twin: TwinHandle) -> None:
    container = docker_engine.containers.get(twin.container.container_id)
    started = container.exec_run(["sh", "-c", f"setsid python3 -c {shlex.quote(REWRITER)} >/dev/null 2>&1 &"],
                                 user="root")
    assert started.exit_code == 0, started.output
    read = file_reader(docker_engine, twin)
    seen: set[int] = set()
    for _ in range(300):
        try:
            raw = read(PATH)
        except FileNotFoundError:  # before the first write
            continue
        st = ClockState.parse(raw)  # raises DeviceError on a torn read
        assert json.loads(raw)["errors"] == ["e" * (st.jumps % 97)]
        seen.add(st.jumps)
    # the file really changed under the reads
    assert len(seen) > 50, f"only {len(seen)} distinct states were read"
