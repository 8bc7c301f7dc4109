"""pytest plugin: firmware privacy checks written as ordinary tests.

    def test_no_sms_leak(honeyphone_analysis):
        assert not honeyphone_analysis.leaked("sms")

Each test using ``honeyphone_analysis`` runs once per firmware bundle, from
``--honeyphone-firmware PATH`` (repeatable) or else a ``honeyphone_firmware``
list in the test module or the nearest ``conftest.py`` (relative paths:
from that file's directory, else from the rootdir).  The scenario comes from
``--honeyphone-hours/-seed/-contacts/-sms/-calls``, else a
``honeyphone_scenario`` dict found the same way, else the defaults.

An analysis takes tens of seconds, so results are cached per (bundle,
scenario, farm): all tests of one version share one analysis, also across
pytest-xdist workers (a file lock in the run's shared temporary directory
makes the first worker run it and the others read its result).  Analyses
run on a farm with ``--honeyphone-server ADDR``, else on this machine
(``sandbox.core.pipeline.run_analysis``; Docker needed).  An analysis that
cannot complete makes its tests error, never pass.

Registered through the ``pytest11`` entry point, so it is loaded by every
pytest run in the environment: importing it does nothing but define hooks,
and the hooks do nothing for tests that do not use the fixture.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandbox.model import Scenario, Verdict

FIXTURE = "honeyphone_analysis"
FIRMWARE_VAR = "honeyphone_firmware"
SCENARIO_VAR = "honeyphone_scenario"
SCENARIO_OPTIONS = ("hours", "seed", "contacts", "sms", "calls")
KIND_ALIASES = {"contacts": "contact", "calls": "call_log", "call": "call_log", "calllog": "call_log",
                "call_logs": "call_log", "messages": "sms"}
_memo_key = pytest.StashKey[dict[str, "AnalysisResult"]]()


def _host_matches(wanted: str, host: str, ip: str) -> bool:
    wanted = wanted.lower().rstrip(".")
    host = host.lower().rstrip(".")
    return wanted in (host, ip) or host.endswith("." + wanted)


@dataclass(frozen=True)
class AnalysisResult:
    """One firmware's analysis as a test sees it."""

    bundle: str
    analysis_id: str
    verdict: Verdict | None
    findings: tuple[Mapping[str, Any], ...] = ()
    destinations: tuple[str, ...] = ()
    report: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    error: str | None = None

    def leaked(self, kind: str | None = None, host: str | None = None) -> bool:
        """Whether any canary (of ``kind``: contact, sms, call_log) reached ``host`` (or any host).

        ``host`` matches the destination name, its subdomains (``adups.com``
        matches ``bigdata.adups.com``) or its IP address.
        """
        want = KIND_ALIASES.get(kind, kind) if kind else None
        for f in self.findings:
            canary, dest = f.get("canary") or {}, f.get("destination") or {}
            if want is not None and canary.get("kind") != want:
                continue
            if host is not None and not _host_matches(host, str(dest.get("host") or ""), str(dest.get("ip") or "")):
                continue
            return True
        return False

    @property
    def leaked_kinds(self) -> frozenset[str]:
        return frozenset(str((f.get("canary") or {}).get("kind")) for f in self.findings)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AnalysisResult:
        from sandbox.campaign.model import report_destinations
        from sandbox.model import Verdict

        report = data.get("report") or {}
        return cls(
            bundle=data["bundle"], analysis_id=data.get("analysis_id", ""),
            verdict=Verdict(data["verdict"]) if data.get("verdict") else None,
            findings=tuple(report.get("findings") or ()), destinations=report_destinations(report),
            report=report, error=data.get("error"),
        )


# -- options and parametrization ------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("honeyphone", "Honeyphone firmware analyses (honeyphone_analysis fixture)")
    g.addoption("--honeyphone-firmware", action="append", default=[], metavar="PATH",
                help="firmware bundle to run honeyphone_analysis tests over (repeatable)")
    g.addoption("--honeyphone-server", metavar="ADDR", help="run the analyses on this farm (default: on this machine)")
    g.addoption("--honeyphone-token-file", metavar="FILE", help="bearer token file for --honeyphone-server")
    g.addoption("--honeyphone-hours", type=float, metavar="H", help="device hours to simulate (default 96)")
    g.addoption("--honeyphone-seed", type=int, metavar="N", help="canary seed (default 0)")
    for name in ("contacts", "sms", "calls"):
        g.addoption(f"--honeyphone-{name}", type=int, metavar="N", help=f"{name} to plant")


def _declared(metafunc_or_request: Any, name: str) -> tuple[object, Path] | None:
    """``name`` from the test module, else from the nearest conftest.py above it; with that file's directory."""
    module = metafunc_or_request.module
    if hasattr(module, name):
        return getattr(module, name), Path(module.__file__).resolve().parent
    here = Path(module.__file__).resolve().parent
    best: tuple[object, Path] | None = None
    for plugin in metafunc_or_request.config.pluginmanager.get_plugins():
        f = getattr(plugin, "__file__", None)
        if not f or Path(f).name != "conftest.py" or not hasattr(plugin, name):
            continue
        d = Path(f).resolve().parent
        if (here == d or d in here.parents) and (best is None or len(d.parts) > len(best[1].parts)):
            best = getattr(plugin, name), d
    return best


def _resolve(path: str, *bases: Path) -> str:
    p = Path(path)
    if p.is_absolute():
        return str(p)
    for base in bases:
        if (base / p).exists():
            return str((base / p).resolve())
    return str((bases[0] / p).resolve()) if bases else str(p.resolve())


def _firmware(metafunc: pytest.Metafunc) -> list[str]:
    config = metafunc.config
    given: list[str] = config.getoption("honeyphone_firmware") or []
    if given:
        return [_resolve(p, config.invocation_params.dir) for p in given]
    found = _declared(metafunc, FIRMWARE_VAR)
    if found is None:
        return []
    value, where = found
    items = [value] if isinstance(value, (str, os.PathLike)) else list(value)  # type: ignore[call-overload]
    return [_resolve(os.fspath(v), where, config.rootpath) for v in items]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if FIXTURE not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if FIXTURE in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # the test names its bundles itself (indirect=True)
    bundles = _firmware(metafunc)
    if bundles:
        metafunc.parametrize(FIXTURE, bundles, indirect=True, ids=[Path(b).name for b in bundles])


def pytest_report_header(config: pytest.Config) -> str | None:
    firmware = config.getoption("honeyphone_firmware")
    if not firmware:
        return None
    where = config.getoption("honeyphone_server") or "this machine"
    return f"honeyphone: {len(firmware)} firmware bundle(s), analyses on {where}"


def _scenario(request: pytest.FixtureRequest) -> Scenario:
    from sandbox.model import Scenario

    values: dict[str, Any] = {}
    found = _declared(request, SCENARIO_VAR)
    if found is not None and isinstance(found[0], Mapping):
        values.update(found[0])
    for name in SCENARIO_OPTIONS:
        opt = request.config.getoption(f"honeyphone_{name}")
        if opt is not None:
            values[name] = opt
    return Scenario(**values)


# -- running and caching ----------------------------------------------------------------


def _shared_dir(request: pytest.FixtureRequest) -> Path:
    """A directory every xdist worker of this run shares (this run's basetemp without xdist)."""
    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    root = base.parent if hasattr(request.config, "workerinput") else base
    path = Path(root) / "honeyphone-analyses"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run_local(bundle: Path, scenario: Scenario, shared: Path) -> dict[str, Any]:
    from sandbox.containers.engine import docker_client
    from sandbox.model import AnalysisRequest, CancelToken
    from sandbox.core.pipeline import run_analysis
    from sandbox.device.twin import new_analysis_id
    from sandbox.images import ImageBuilder
    from sandbox.settings import Settings

    settings = Settings.from_env()
    client = docker_client(settings)
    with _locked(shared / "images.lock"):
        builder = ImageBuilder(settings, client)
        builder.build("twin")
        builder.build("fakenet")
    aid = new_analysis_id()
    request = AnalysisRequest(aid, bundle, scenario)
    outcome = run_analysis(settings, request, lambda ev: None, CancelToken(), shared / "artifacts" / aid, client=client)
    verdict = outcome.verdict.value if outcome.verdict is not None else None
    return {"analysis_id": aid, "verdict": verdict, "report": dict(outcome.report), "error": outcome.error}


def _run_farm(bundle: Path, scenario: Scenario, server: str, token_file: str | None) -> dict[str, Any]:
    from sandbox.api.channel import ClientSecurity, open_channel
    from sandbox.api.client import SandboxClient
    from sandbox.campaign.runner import await_outcome, upload

    security = ClientSecurity.from_files(Path(token_file) if token_file else None, None)
    client = SandboxClient(open_channel(server, security))
    sha = upload(client, bundle)
    rec = client.submit(sha, scenario, 0, {"honeyphone.pytest": bundle.name[:256]})
    out = await_outcome(client, rec.id)
    verdict = out.verdict.value if out.verdict is not None else None
    return {"analysis_id": rec.id, "verdict": verdict, "report": dict(out.report), "error": out.error}


def _analyze(request: pytest.FixtureRequest, bundle: str, scenario: Scenario) -> AnalysisResult:
    config = request.config
    server = config.getoption("honeyphone_server")
    key = hashlib.sha256(json.dumps([bundle, asdict(scenario), server or ""], sort_keys=True).encode()).hexdigest()[:24]
    memo = config.stash.setdefault(_memo_key, {})
    if key in memo:
        return memo[key]
    shared = _shared_dir(request)
    result_file = shared / f"{key}.json"
    with _locked(shared / f"{key}.lock"):
        if result_file.exists():
            data = json.loads(result_file.read_text(encoding="utf-8"))
        else:
            try:
                if server:
                    data = _run_farm(Path(bundle), scenario, server, config.getoption("honeyphone_token_file"))
                else:
                    data = _run_local(Path(bundle), scenario, shared)
            except Exception as exc:  # cached too: the version's other tests must not rerun a broken analysis
                data = {"analysis_id": "", "verdict": None, "report": {}, "error": f"{type(exc).__name__}: {exc}"}
            data["bundle"] = bundle
            tmp = result_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(result_file)
    memo[key] = AnalysisResult.from_json(data)
    return memo[key]


@pytest.fixture
def honeyphone_analysis(request: pytest.FixtureRequest) -> AnalysisResult:
    """The analysis of this test's firmware version (shared by every test of that version)."""
    bundle = getattr(request, "param", None)
    if bundle is None:
        pytest.fail(f"no firmware for {FIXTURE}: pass --honeyphone-firmware PATH or define {FIRMWARE_VAR} = [...] "
                    "in the test module or a conftest.py", pytrace=False)
    result = _analyze(request, str(bundle), _scenario(request))
    if result.error is not None or result.verdict is None:
        pytest.fail(f"the analysis of {bundle} could not complete: {result.error}", pytrace=False)
    return result
