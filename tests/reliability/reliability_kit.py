"""The machinery of the reliability suite, shared with ``benchmarks/reliability``.

Everything runs the way an operator runs deployfw: a long-running ``deployfw sandbox``
process (so AWS state survives the processes we kill), ``deployfw run`` subprocesses
pointed at it with ``AWS_ENDPOINT_URL``, and a throwaway git repository holding the
example. What happened is judged only from the outside - the sandbox's request log,
CodeDeploy's own deployment records and the sqlite state store file - so the suite
checks deployfw's promises, not its internals.

Two switches make a commit that affects every service module. The usual one is the
deploy timeout in ``defaults.deploy`` of modules.yaml: a change to every module's own
config, which deploys every module again while its image inputs (and so its content
tag) stay the same - the build is skipped and an iteration takes seconds. The other, a
file under ``examples/shop/gradle/`` (a ``shared_paths`` glob), changes every image and
forces real builds where a scenario needs them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployfw.testing.cli import deployfw_command, terminal_env
from deployfw.testing.sandbox_process import SandboxProcess

REPOSITORY = Path(__file__).resolve().parents[2]
SERVICES = ("order-api", "payment-api", "product-api", "user-api")
CODEDEPLOY = {"order-api": ("shop-order-api", "order-api"), "payment-api": ("shop-payment-api", "payment-api"),
              "user-api": ("shop-user-api", "user-api")}  # fmt: skip
ROLLING = {"product-api": ("shop", "product-api")}
SWITCH = "examples/shop/gradle/reliability.properties"
DEPLOY_TIMEOUT = 30  # minutes; the value rotates to make a config change
FAST_TIMINGS = "deploy_step=0.03,rolling_step=0.03,build_phase=0.01,tick=0.02"

# Figures each scenario adds; the conftest's terminal summary (or the benchmark) prints them.
FIGURES: dict[str, dict[str, Any]] = {}


def figure(section: str, **values: Any) -> None:
    """Record figures under ``section`` (later values of one key replace earlier ones)."""
    FIGURES.setdefault(section, {}).update(values)


def format_figures(figures: Mapping[str, Mapping[str, Any]] | None = None) -> list[str]:
    lines = []
    for section, values in (figures if figures is not None else FIGURES).items():
        lines.append(f"{section}:")
        lines.extend(f"  {key}: {value}" for key, value in values.items())
    return lines


# -- the repository ----------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = {**terminal_env(), "GIT_AUTHOR_NAME": "r", "GIT_AUTHOR_EMAIL": "r@example.com",
           "GIT_COMMITTER_NAME": "r", "GIT_COMMITTER_EMAIL": "r@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


class Repo:
    """A committed copy of this checkout's tracked files (work in progress included), with the content switch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._count = 0

    @classmethod
    def create(cls, dest: Path) -> Repo:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True)
        for rel in filter(None, listed.stdout.decode().split("\0")):
            source = REPOSITORY / rel
            if source.is_file():
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        git(dest, "init", "--quiet", "--initial-branch=main")
        (dest / SWITCH).write_text("variant=0\n")
        # The switch: defaults.deploy.timeout_minutes, inserted as text so the file stays as written.
        text = (dest / "modules.yaml").read_text()
        text, found = re.subn(r"(^defaults:\n(?:  .*\n)*?  deploy:\n)", rf"\1    timeout_minutes: {DEPLOY_TIMEOUT}\n",
                              text, count=1, flags=re.M)  # fmt: skip
        if not found:
            config = yaml.safe_load(text)
            config["defaults"]["deploy"]["timeout_minutes"] = DEPLOY_TIMEOUT
            text = yaml.safe_dump(config, sort_keys=False)
        (dest / "modules.yaml").write_text(text)
        repo = cls(dest)
        repo.commit("example")
        return repo

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return git(self.path, "rev-parse", "HEAD").strip()

    def change_all(self, *, rebuild: bool = False) -> str:
        """A new commit that affects every service module; images are reused unless ``rebuild``."""
        self._count += 1
        if rebuild:
            (self.path / SWITCH).write_text(f"variant={time.time_ns()}\n")
        else:
            config = self.path / "modules.yaml"
            minutes = DEPLOY_TIMEOUT + self._count % 50
            text, found = re.subn(r"timeout_minutes: \d+", f"timeout_minutes: {minutes}", config.read_text(), count=1)
            assert found == 1, "modules.yaml lost the reliability switch"
            config.write_text(text)
        return self.commit(f"reliability change {self._count}{' (rebuild)' if rebuild else ''}")


# -- the sandbox -------------------------------------------------------------------------------


def open_sandbox(repo: Path, log: Path | None = None) -> SandboxProcess:
    """The kit's ``deployfw sandbox`` process in ``repo`` with the suite's fast timings, started."""
    return SandboxProcess(repo, timings=FAST_TIMINGS, log=log).start()


def retrying_client(sandbox: SandboxProcess, service: str) -> Any:
    """A boto3 client that rides out the suite's injected throttling (up to 10 attempts)."""
    import botocore.config

    return sandbox.client(service, config=botocore.config.Config(retries={"max_attempts": 10}))


# -- runs ----------------------------------------------------------------------------------------


@dataclass
class RunProcess:
    """One ``deployfw run`` subprocess whose stderr lines are watched live (kill after a given line)."""

    proc: subprocess.Popen[str]
    started: float
    lines: list[str] = field(default_factory=list)
    stdout: str = ""
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, repo: Path, env: Mapping[str, str], *args: str) -> RunProcess:
        proc = subprocess.Popen(
            [*deployfw_command(), "run", "--max-parallel", "4", *args],
            cwd=repo, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group: SIGKILL takes its build children down too, like a CI abort
        )  # fmt: skip
        run = cls(proc, time.monotonic())
        run._readers = [threading.Thread(target=run._read_err, daemon=True),
                        threading.Thread(target=run._read_out, daemon=True)]  # fmt: skip
        for reader in run._readers:
            reader.start()
        return run

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    def wait_for(self, pattern: str, timeout: float = 60.0) -> bool:
        """True once a stderr line matches ``pattern``; False if the run ended or the timeout passed first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if regex.search(line):
                        return True
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._readers[0].is_alive()):
                    return False
                self._cond.wait(min(remaining, 0.05))

    def signal(self, signum: int) -> None:
        """SIGKILL: the whole process group (an agent dying); SIGTERM: the run itself (a CI abort)."""
        if self.proc.poll() is not None:
            return
        if signum == signal.SIGKILL:
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 120.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        # A SIGKILLed run's build children share its group; make sure none outlives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return code

    @property
    def output(self) -> str:
        return "\n".join(self.lines) + "\n" + self.stdout

    def run_id(self) -> str | None:
        found = re.search(r"^run (\S+) ", self.stdout, re.MULTILINE)
        return found.group(1) if found else None


def run(repo: Path, env: Mapping[str, str], *args: str, timeout: float = 180.0) -> tuple[int, RunProcess]:
    proc = RunProcess.start(repo, env, *args)
    return proc.wait(timeout), proc


# -- the state store ---------------------------------------------------------------------------


def open_state(repo: Path, sandbox: SandboxProcess) -> tuple[Any, Any]:
    """(store, scope) as ``deployfw run`` sees them for this sandbox: the endpoint is part of the account key."""
    from deployfw.state.sqlite import SqliteStore

    return SqliteStore(repo / ".deployfw" / "state.db"), sandbox.scope()


def state_problems(
    repo: Path,
    sandbox: SandboxProcess,
    head: str,
    modules: Iterable[str] = SERVICES,
    *,
    live_runs: Iterable[str] | None = None,
) -> list[str]:
    """The state store after a finished run: last success == head, nothing "started", no lock held.

    ``live_runs``: when given, only locks of these runs count as held; a SIGKILLed run's lock is
    left to expire with its lease (30 s) unless a later run needed the module.
    """
    live = None if live_runs is None else set(live_runs)
    store, scope = open_state(repo, sandbox)
    problems = []
    for name in modules:
        last = store.last_success(scope, name)
        if last is None or last.commit != head:
            problems.append(f"{name}: last success is {last.commit[:12] if last else None}, not head {head[:12]}")
        for record in store.history(scope, name, limit=1000):
            if record.outcome == "started":
                problems.append(f"{name}: record of run {record.run_id} is still 'started'")
        lock = store.lock_info(scope, name)
        if lock is not None and not lock.expired(time.time()) and (live is None or lock.run_id in live):
            problems.append(f"{name}: lock still held by run {lock.run_id}")
    return problems


def records_for(
    repo: Path, sandbox: SandboxProcess, commit: str, modules: Iterable[str] = SERVICES
) -> dict[str, list[Any]]:
    store, scope = open_state(repo, sandbox)
    return {m: [r for r in store.history(scope, m, limit=1000) if r.commit == commit] for m in modules}


# -- what the sandbox saw ------------------------------------------------------------------------


def ok(entry: Mapping[str, Any]) -> bool:
    return 200 <= int(entry.get("status", 0)) < 300


def deploy_calls(entries: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Successful deployment-creating calls per module: CreateDeployment per group, UpdateService per rolling service.

    A rolling rollback is an UpdateService too; it is told apart by the caller (its task definition is an older one).
    """
    by_group = {group: module for module, (_, group) in CODEDEPLOY.items()}
    by_service = {service: module for module, (_, service) in ROLLING.items()}
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        if not ok(entry):
            continue
        params = entry.get("params") or {}
        if entry["operation"] == "CreateDeployment" and params.get("deploymentGroupName") in by_group:
            found[by_group[params["deploymentGroupName"]]].append(entry)
        elif entry["operation"] == "UpdateService" and str(params.get("service", "")).split("/")[-1] in by_service:
            found[by_service[str(params["service"]).split("/")[-1]]].append(entry)
    return found


@dataclass
class Deployment:
    """One CodeDeploy deployment as CodeDeploy reports it (times in epoch seconds)."""

    module: str
    id: str
    status: str
    created: float
    completed: float | None
    run_id: str | None
    rollback_of: str | None = None


def codedeploy_deployments(sandbox: SandboxProcess, since: float) -> dict[str, list[Deployment]]:
    """Every deployment of the example's groups created at or after ``since`` (epoch seconds), oldest first."""
    client = retrying_client(sandbox, "codedeploy")
    found: dict[str, list[Deployment]] = {}
    for module, (application, group) in CODEDEPLOY.items():
        ids = client.list_deployments(applicationName=application, deploymentGroupName=group).get("deployments", [])
        items = []
        for chunk in (ids[i : i + 25] for i in range(0, len(ids), 25)):
            for info in client.batch_get_deployments(deploymentIds=chunk).get("deploymentsInfo", []):
                created = info["createTime"].timestamp()
                if created + 1e-3 < since:
                    continue
                marker = re.search(r"deployfw run (\S+) module", info.get("description") or "")
                complete = info.get("completeTime")
                items.append(
                    Deployment(
                        module,
                        info["deploymentId"],
                        info["status"],
                        created,
                        complete.timestamp() if complete else None,
                        marker.group(1) if marker else None,
                        (info.get("rollbackInfo") or {}).get("rollbackTriggeringDeploymentId"),
                    )
                )
        found[module] = sorted(items, key=lambda d: d.created)
    return found


def overlaps(intervals: Sequence[tuple[float, float | None, str]]) -> list[str]:
    """Pairs of [start, end] intervals of one service that overlap (an open end overlaps everything after it)."""
    problems = []
    ordered = sorted(intervals, key=lambda i: i[0])
    for (start_a, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(ordered):
        if end_a is None or start_b < end_a - 1e-3:
            problems.append(f"{name_a} [{start_a:.3f}, {end_a}] overlaps {name_b} starting {start_b:.3f}")
    return problems


@dataclass
class Verdict:
    """What one scenario's end state says; ``problems`` empty means every promise held."""

    successes: dict[str, int]
    attempts: dict[str, int]
    problems: list[str]


def judge(
    sandbox: SandboxProcess,
    repo: Path,
    head: str,
    entries: Sequence[Mapping[str, Any]],
    since: float,
    *,
    expect_success_per_commit: Mapping[str, int] | None = None,
    live_runs: Iterable[str] | None = None,
) -> Verdict:
    """Exactly-once and no-overlap, for every module, from the request log, CodeDeploy and the state store.

    * successes: CodeDeploy deployments that ended ``Succeeded`` (blue/green) and state records that ended
      ``succeeded`` (rolling), per module, for ``head``; exactly one each unless told otherwise;
    * attempts: 2xx CreateDeployment / forward UpdateService calls; every attempt beyond the successful one
      must be explained by a record that ended rolled back, failed or abandoned (a cancelled deployment);
    * overlap: CodeDeploy's [create, complete] per group, and the state records' [started, ended] per module,
      never overlap;
    * the state store: last success == head, nothing left "started", no lock held.
    """
    expected = dict.fromkeys(SERVICES, 1) if expect_success_per_commit is None else dict(expect_success_per_commit)
    problems = state_problems(repo, sandbox, head, live_runs=live_runs)
    records = records_for(repo, sandbox, head)
    store, scope = open_state(repo, sandbox)
    calls = deploy_calls(entries)
    deployments = codedeploy_deployments(sandbox, since)
    run_ids = {r.run_id for rs in records.values() for r in rs}
    successes: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    for module in SERVICES:
        own = records[module]
        unsuccessful = sum(1 for r in own if r.outcome in ("rolled_back", "failed", "abandoned"))
        if module in CODEDEPLOY:
            ours = [d for d in deployments[module] if d.run_id in run_ids or d.run_id is None]
            forward = [d for d in ours if d.rollback_of is None]
            successes[module] = sum(1 for d in forward if d.status == "Succeeded")
            attempts[module] = len(calls.get(module, []))
            # A stop's auto-rollback starts as the stop completes: one operation, as all_overlaps counts it.
            problems += [f"{module}: {p}" for p in overlaps(_with_rollbacks(ours))]
            for d in forward:
                if d.run_id not in run_ids:
                    problems.append(f"{module}: deployment {d.id} has no deploy record at head {head[:12]}")
            done = [d for d in forward if d.status not in ("Succeeded", "Failed", "Stopped")]
            problems += [f"{module}: deployment {d.id} is still {d.status}" for d in done]
        else:
            successes[module] = sum(1 for r in own if r.outcome == "succeeded")
            old = {r.task_definition for r in store.history(scope, module, limit=1000) if r.commit != head}
            forward_calls = [c for c in calls.get(module, []) if (c.get("params") or {}).get("taskDefinition")
                             not in old]  # fmt: skip
            attempts[module] = len(forward_calls)
        if successes[module] != expected[module]:
            problems.append(f"{module}: {successes[module]} successful deployments of {head[:12]}, "
                            f"expected {expected[module]}")  # fmt: skip
        if attempts[module] > successes[module] + unsuccessful:
            problems.append(f"{module}: {attempts[module]} deployments created for {head[:12]} but only "
                            f"{successes[module]} succeeded and {unsuccessful} were cancelled or failed")  # fmt: skip
        spans = [
            (r.started_at.timestamp(), r.ended_at.timestamp() if r.ended_at else None, r.run_id)
            for r in store.history(scope, module, limit=1000)
            if r.started_at and r.started_at.timestamp() >= since
        ]
        problems += [f"{module} records: {p}" for p in overlaps(spans)]
    return Verdict(dict(successes), dict(attempts), problems)


# -- kill points ---------------------------------------------------------------------------------

# Where a run is killed: right after one of these stderr lines (plus a little), or a share of a run after its start.
KILL_LINES: tuple[tuple[str, str], ...] = (
    ("locks taken, plan printed", r"deployfw +plan +\| plan"),
    ("content tag looked up", r"build +\| image with content tag"),
    ("image promoted", r"push +\| .*tagged"),
    ("task definition registered", r"registered task definition"),
    ("deployment created", r"deployment (d-\w+ in |ecs-svc/\S+ of )"),
    # Lines every run prints early, while other work is still going: a line that may not come at all
    # (an InProgress or a traffic split a fast deployment completes between two polls) would count
    # against the quota by chance rather than by anything deployfw did.
    ("CodeDeploy deployment in progress", r"deployment d-\w+ in \S+ with "),
    ("rolling update started", r"deployment ecs-svc/\S+ of \S+ started"),
    ("first module deployed", r"deploy +\| succeeded in"),
)
REBUILD_LINE = ("building", r"build +\| building")


@dataclass(frozen=True)
class KillPoint:
    """Send ``signum`` ``share`` of a run's length after the stderr line ``after`` (or after the start when None).

    Delays are shares of the length of an uninterrupted run *measured on this machine, now*
    (:attr:`Lane.run_seconds`), never fixed seconds: a kill meant for the middle of a run lands in
    the middle on a quiet laptop and on a loaded CI agent alike.
    """

    signum: int
    label: str
    after: str | None
    share: float
    rebuild: bool = False

    def __str__(self) -> str:
        where = f"{self.share:.0%} of a run after {self.label if self.after else 'start'}"
        return f"{signal.Signals(self.signum).name} {where}{' (rebuild)' if self.rebuild else ''}"


def kill_points(count: int, seed: int = 7, *, rebuilds: int = 2) -> list[KillPoint]:
    """``count`` kill points: SIGTERM and SIGKILL alternating; every log line and a spread of delays.

    Two in five are pure delays spread over a run's life (5% to 60% of its measured length after
    the start, which covers start-up, planning, locking and deploying, and leaves room for a
    machine that speeds up after it was measured); the rest follow the log lines in turn with a
    small random extra share. The first ``rebuilds`` line-based ones need fresh builds and kill
    while building.
    """
    rng = random.Random(seed)
    points: list[KillPoint] = []
    lines = itertools.cycle(KILL_LINES)
    delays = max(1, count * 2 // 5)
    for i in range(count):
        signum = signal.SIGTERM if i % 2 == 0 else signal.SIGKILL
        if i % 5 in (1, 3) and delays:
            delays -= 1
            spread = 0.05 + 0.55 * ((i * 7919) % count) / max(1, count - 1)
            points.append(KillPoint(signum, "start", None, round(spread, 3)))
        elif rebuilds and (signum == signal.SIGKILL) == (rebuilds % 2 == 1):
            rebuilds -= 1
            points.append(KillPoint(signum, REBUILD_LINE[0], REBUILD_LINE[1], round(rng.uniform(0.0, 0.2), 3), True))
        else:
            label, pattern = next(lines)
            points.append(KillPoint(signum, label, pattern, round(rng.uniform(0.0, 0.04), 3)))
    return points


@dataclass
class KillOutcome:
    point: KillPoint
    fired: bool  # the line appeared (or the delay passed) while the run was still alive
    killed_exit: int
    rerun_exit: int
    rerun_seconds: float
    verdict: Verdict
    output: str
    delay: float = 0.0  # the seconds the point's share came to on its lane

    @property
    def ok(self) -> bool:
        return self.rerun_exit == 0 and not self.verdict.problems


def kill_and_rerun(lane: Lane, point: KillPoint) -> KillOutcome:
    """A new commit; a run killed at ``point``; a rerun (supersede after SIGKILL: the dead run's lease is live)."""
    repo, sandbox = lane.repo, lane.sandbox
    head = repo.change_all(rebuild=point.rebuild)
    sandbox.clear_requests()
    since = time.time()
    env = sandbox.run_env()
    delay = point.share * lane.run_seconds
    victim = RunProcess.start(repo.path, env)
    if point.after:
        fired = victim.wait_for(point.after, timeout=max(60.0, 10 * lane.run_seconds))
        time.sleep(delay)
    else:
        time.sleep(max(0.0, delay - (time.monotonic() - victim.started)))
        fired = victim.proc.poll() is None
    victim.signal(point.signum)
    killed_exit = victim.wait()
    mode = ("--mode", "supersede") if point.signum == signal.SIGKILL else ("--lock-timeout", "120")
    started = time.monotonic()
    rerun_exit, rerun_proc = run(repo.path, env, *mode)
    rerun_seconds = time.monotonic() - started
    if not point.rebuild and rerun_exit == 0:
        # A rerun does at least what a run does (the killed run's modules, and its leftovers): if the
        # machine got faster since the calibration, it shows here and later kills come earlier.
        lane.observe(rerun_seconds)
    # A SIGKILLed run cannot release its locks: they expire with the lease unless the rerun took them.
    live = [rerun_proc.run_id() or "?"] if point.signum == signal.SIGKILL else None
    verdict = judge(sandbox, repo.path, head, sandbox.requests(), since, live_runs=live)
    output = (f"--- killed run ({point}, {delay:.2f}s on a {lane.run_seconds:.2f}s run) exit {killed_exit}:\n"
              f"{victim.output[-3000:]}\n--- rerun exit {rerun_exit}:\n")  # fmt: skip
    return KillOutcome(
        point, fired, killed_exit, rerun_exit, rerun_seconds, verdict, output + rerun_proc.output[-4000:], delay
    )


def kill_figures(outcomes: Sequence[KillOutcome]) -> dict[str, Any]:
    delays = [o.delay for o in outcomes]
    return {
        "kill_points": len(outcomes),
        "sigterm": sum(1 for o in outcomes if o.point.signum == signal.SIGTERM),
        "sigkill": sum(1 for o in outcomes if o.point.signum == signal.SIGKILL),
        "killed_mid_run": sum(1 for o in outcomes if o.fired and o.killed_exit != 0),
        "finished_before_kill": sum(1 for o in outcomes if o.killed_exit == 0),
        "reruns_exit_0": sum(1 for o in outcomes if o.rerun_exit == 0),
        "modules_deployed_exactly_once": sum(sum(1 for n in o.verdict.successes.values() if n == 1) for o in outcomes),
        "modules_checked": len(outcomes) * len(SERVICES),
        "extra_deployments_explained_by_rollback": sum(
            sum(o.verdict.attempts.values()) - sum(o.verdict.successes.values()) for o in outcomes
        ),
        "consistent_end_states": sum(1 for o in outcomes if o.ok),
        "slowest_rerun_s": round(max((o.rerun_seconds for o in outcomes), default=0.0), 1),
        "kill_delays_s": f"{min(delays, default=0.0):.2f}..{max(delays, default=0.0):.2f}",
        "not_landed": [f"{o.point} ({'exit ' + str(o.killed_exit) if o.fired else 'its moment never came'})"
                       for o in outcomes if not (o.fired and o.killed_exit != 0)],
    }


@dataclass
class Lane:
    """One repository and its own sandbox: kill points in different lanes run at the same time.

    ``runs`` are the lengths of uninterrupted runs measured on this lane (a calibration run first,
    then the reruns that were whole runs), so kill delays scale with how fast this machine is now.
    """

    repo: Repo
    sandbox: SandboxProcess
    runs: list[float] = field(default_factory=list)

    def observe(self, seconds: float) -> None:
        self.runs.append(seconds)

    @property
    def run_seconds(self) -> float:
        """The length of a run on this lane: the shortest measured so far.

        The shortest, because a kill meant for the middle of a run must not come after its end: a
        slower run (a loaded moment, a rerun that first concludes what the killed run left) only
        moves the same kill earlier in it, and a machine that gets faster shows in a shorter rerun.
        """
        if not self.runs:
            raise RuntimeError("the lane was not calibrated (calibrate)")
        return min(self.runs)


def calibrate(lane: Lane, *, fresh: bool) -> float:
    """Measure an uninterrupted run of the kind most kill points interrupt (a config change: deploys only).

    A ``fresh`` lane builds its images first, in a run that is not measured.
    """
    for measured in ([False] if fresh else []) + [True]:
        lane.repo.change_all()
        started = time.monotonic()
        code, proc = run(lane.repo.path, lane.sandbox.run_env())
        if code != 0:
            raise AssertionError(f"calibration run exit {code}:\n{proc.output[-3000:]}")
        if measured:
            lane.observe(time.monotonic() - started)
    return lane.run_seconds


def open_lanes(root: Path, count: int, log_dir: Path | None = None) -> list[Lane]:
    """``count`` lanes started concurrently (each sandbox start is seconds of mostly waiting)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> Lane:
        repo = Repo.create(root / f"lane-{index}")
        log = (log_dir / f"sandbox-{index}.err") if log_dir else None
        return Lane(repo, open_sandbox(repo.path, log))

    with ThreadPoolExecutor(max(1, count)) as pool:
        return list(pool.map(one, range(count)))


def run_kill_points(lanes: Sequence[Lane], points: Sequence[KillPoint], *, fresh: int = 0) -> list[KillOutcome]:
    """Every point on some lane, lanes in parallel, after measuring a run on every lane at the same time
    (so the measurement carries the load the kill points will run under). The first ``fresh`` lanes have
    never built: their calibration builds first, and their first point is a rebuild one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(lanes)) as pool:
        list(pool.map(lambda i: calibrate(lanes[i], fresh=i < fresh), range(len(lanes))))
    queues: list[list[KillPoint]] = [[] for _ in lanes]
    rebuilds = [p for p in points if p.rebuild]
    others = [p for p in points if not p.rebuild]
    for index in range(min(fresh, len(lanes))):
        if rebuilds:
            queues[index].append(rebuilds.pop(0))
    for i, point in enumerate(rebuilds + others):
        queues[i % len(lanes)].append(point)

    def drive(index: int) -> list[KillOutcome]:
        return [kill_and_rerun(lanes[index], p) for p in queues[index]]

    with ThreadPoolExecutor(len(lanes)) as pool:
        return [o for outcomes in pool.map(drive, range(len(lanes))) for o in outcomes]


# -- concurrent runs -----------------------------------------------------------------------------

DEPLOYMENT_CREATED = r"deployment (d-\w+ in |ecs-svc/\S+ of )"
PLANNED = r"deployfw +plan +\| plan"


def _with_rollbacks(deployments: Sequence[Deployment]) -> list[tuple[float, float | None, str]]:
    """Spans per deployment, a CodeDeploy auto-rollback counted as part of the deployment it undoes.

    Stopping a deployment with auto-rollback starts the rollback as the stop completes; that
    is one operation on the service, not two deployments racing each other.
    """
    ends: dict[str, float | None] = {d.id: d.completed for d in deployments}
    for d in deployments:
        if d.rollback_of in ends:
            done = ends[d.rollback_of]
            ends[d.rollback_of] = None if d.completed is None or done is None else max(done, d.completed)
    return [
        (d.created, ends[d.id], f"{d.id} ({d.status}, run {d.run_id})")
        for d in deployments
        if d.rollback_of not in ends
    ]


def all_overlaps(sandbox: SandboxProcess, repo: Path, since: float) -> list[str]:
    """Every service's deployments since ``since``, whichever run made them: CodeDeploy times and state records."""
    store, scope = open_state(repo, sandbox)
    problems = []
    for module, deployments in codedeploy_deployments(sandbox, since).items():
        problems += [f"{module}: {p}" for p in overlaps(_with_rollbacks(deployments))]
    for module in SERVICES:
        recent = [
            r for r in store.history(scope, module, limit=1000) if r.started_at and r.started_at.timestamp() >= since
        ]
        spans = [(r.started_at.timestamp(), r.ended_at.timestamp() if r.ended_at else None, r.run_id) for r in recent]
        problems += [f"{module} records: {p}" for p in overlaps(spans)]
    return problems


@dataclass
class PairOutcome:
    mode: str
    first_exit: int
    second_exit: int
    problems: list[str]
    stopped: int  # modules the first run left to the second at a safe point
    deployments: int
    output: str


def concurrent_pair(repo: Repo, sandbox: SandboxProcess, mode: str) -> PairOutcome:
    """Two ``deployfw run --mode MODE`` at once; the second starts while the first holds every lock.

    fail: the second exits 3 and changes nothing. queue: the second (a newer commit) waits and
    deploys after the first. supersede: the second (a newer commit) starts while the first is
    deploying, takes the locks, and the first stops at its next safe point; whatever the first left
    in flight is awaited, never overlapped.
    """
    env = sandbox.run_env()
    first_head = repo.change_all()
    sandbox.clear_requests()
    since = time.time()
    # The first deploys one module at a time: it still holds its locks when the second asks for them,
    # and a takeover (supersede) finds modules still to do.
    first = RunProcess.start(repo.path, env, "--mode", mode, "--max-parallel", "1")
    problems = []
    if not first.wait_for(DEPLOYMENT_CREATED if mode == "supersede" else PLANNED, timeout=90):
        problems.append("the first run ended before the second could start")
    head = first_head if mode == "fail" else repo.change_all()
    second = RunProcess.start(repo.path, env, "--mode", mode)
    second_exit = second.wait()
    first_exit = first.wait()
    entries = sandbox.requests()
    problems += all_overlaps(sandbox, repo.path, since)
    problems += state_problems(repo.path, sandbox, head)
    records = records_for(repo.path, sandbox, head)
    if mode == "fail":
        if second_exit != 3 or first_exit != 0:
            problems.append(f"exits {first_exit}/{second_exit}, expected 0/3")
        errors = [line for line in second.lines if line.startswith("deployfw: error:")]
        if len(errors) != 1 or "locked by run" not in errors[0]:
            problems.append(f"the refused run said {second.lines[-5:]}")
        others = {r.run_id for rs in records.values() for r in rs} - {first.run_id()}
        if others:
            problems.append(f"the refused run left deploy records: {sorted(others)}")
    elif mode == "queue":
        if (first_exit, second_exit) != (0, 0):
            problems.append(f"exits {first_exit}/{second_exit}, expected 0/0")
    else:
        if second_exit != 0:
            problems.append(f"the superseding run exited {second_exit}")
        if first_exit != 0 or not re.search(r"superseded by run \S+; stopped at a safe point", first.output):
            problems.append(f"the superseded run exited {first_exit} without stopping at a safe point")
    for module, own in records.items():
        wins = sum(1 for r in own if r.outcome == "succeeded")
        if wins != 1:
            problems.append(f"{module}: {wins} successful deploys of {head[:12]}, expected 1")
    calls = sum(len(c) for c in deploy_calls(entries).values())
    output = f"--- first (exit {first_exit}):\n{first.output[-3000:]}\n--- second (exit {second_exit}):\n"
    stopped = len(set(re.findall(r"^\S+ (\S+) +lock +\| superseded by run", "\n".join(first.lines), re.M)))
    return PairOutcome(mode, first_exit, second_exit, problems, stopped, calls, output + second.output[-3000:])
