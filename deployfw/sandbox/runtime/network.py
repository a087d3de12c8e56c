"""Give every task an address of its own, so each app binds its usual port.

With awsvpc every ECS task has its own IP; apps bind ``0.0.0.0:8080`` and never meet.
The sandbox reproduces that with one of two mechanisms, picked at start
(``DEPLOYFW_SANDBOX_NETWORK=namespace|loopback`` forces one):

``namespace`` (root and ``ip netns`` available - the default on CI machines)
    Each task gets a Linux network namespace joined by a veth pair to one bridge per
    sandbox. The bridge owns a free ``/24`` (chosen from ``10.213.0.0/16`` so that it
    overlaps no route of the machine, under a machine-wide lock); the task's address is
    the next free host of it. The route to the ``/24`` lives as long as the bridge, so
    traffic to a task that is gone fails on the bridge and never leaves the machine.
    Names carry the sandbox's pid (``dfw-<pid>-<n>``, bridge ``dfwb<pid>x<n>``): a sandbox
    that was killed outright leaves them behind, and the next one to start removes
    them (after killing any process still inside).

``loopback`` (the fallback)
    Each task gets its own loopback address ``127.<a>.<b>.<c>`` (a free one: nothing is
    bound on it at the task's ports). Loopback addresses share one namespace, so an app
    that binds ``0.0.0.0`` would take the port for everyone: Python apps get a
    ``sitecustomize`` that turns a bind to ``0.0.0.0``/``""`` into a bind to the task's
    address; any other app must bind ``$DEPLOYFW_TASK_ADDRESS`` itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import random
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

NETWORK_ENV = "DEPLOYFW_SANDBOX_NETWORK"
_bridges = 0
_POOL = ipaddress.ip_network("10.213.0.0/16")
_LOCK_FILE = Path("/run/lock/deployfw-sandbox-network.lock")
_SITE_DIR = Path(__file__).with_name("loopback_site")


@dataclass(frozen=True)
class Endpoint:
    """Where one task lives: its address and, with namespaces, the namespace's name."""

    address: str
    namespace: str | None = None

    @property
    def netns_path(self) -> str | None:
        return f"/run/netns/{self.namespace}" if self.namespace else None


class NetworkError(Exception):
    pass


def _ip(*args: str, stdin: str | None = None) -> None:
    result = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces_available() -> bool:
    """Root with a working ``ip netns`` (checked by creating and removing one)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"dfwprobe-{os.getpid()}-{random.randrange(1 << 30)}"
    try:
        _ip("netns", "add", probe)
    except (NetworkError, OSError):
        return False
    with contextlib.suppress(NetworkError):
        _ip("netns", "del", probe)
    return True


class NamespaceNetwork:
    """One bridge per sandbox, one namespace + veth per task (see the module docstring)."""

    kind = "namespace"

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._token = f"{random.randrange(1 << 16):04x}"
        self._count = 0
        self._lock = threading.Lock()
        global _bridges
        _bridges += 1
        self.bridge = f"dfwb{self._pid}x{_bridges}"
        sweep_stale()
        with _machine_lock():
            subnet = _free_subnet()
            self._subnet = subnet
            hosts = list(subnet.hosts())
            self._gateway = str(hosts[0])
            self._free = [str(h) for h in hosts[1:]]
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self._gateway}/{subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")

    def create(self) -> Endpoint:
        with self._lock:
            if not self._free:
                raise NetworkError(f"no free address left in {self._subnet}")
            address = self._free.pop(0)
            self._count += 1
            n = self._count
        name = f"dfw-{self._pid}-{n}"
        host_if = f"dfh{self._token}{n:x}"[:15]
        peer = f"dfp{self._token}{n:x}"[:15]
        try:
            _ip(
                "-batch",
                "-",
                stdin=(
                    f"netns add {name}\n"
                    f"link add {host_if} type veth peer name {peer} netns {name}\n"
                    f"link set {host_if} master {self.bridge} up\n"
                ),
            )
            _ip(
                "-n",
                name,
                "-batch",
                "-",
                stdin=(
                    f"addr add {address}/{self._subnet.prefixlen} dev {peer}\n"
                    f"link set {peer} up\nlink set lo up\n"
                    f"route add default via {self._gateway}\n"
                ),
            )
        except NetworkError:
            with contextlib.suppress(NetworkError):
                _ip("netns", "del", name)
            with self._lock:
                self._free.append(address)
            raise
        return Endpoint(address, name)

    def destroy(self, endpoint: Endpoint) -> None:
        if endpoint.namespace:
            with contextlib.suppress(NetworkError):
                _ip("netns", "del", endpoint.namespace)
        with self._lock:
            self._free.append(endpoint.address)

    def close(self) -> None:
        with contextlib.suppress(NetworkError):
            _ip("link", "del", self.bridge)

    def site_dir(self) -> Path | None:
        return None


class LoopbackNetwork:
    """A distinct ``127.x.y.z`` per task (see the module docstring)."""

    kind = "loopback"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: set[str] = set()
        # Spread sandboxes of different processes over the 127/8 space.
        self._second = 100 + os.getpid() % 150

    def create(self, ports: Iterable[int] = ()) -> Endpoint:
        wanted = list(ports)
        with self._lock:
            for n in range(1, 250 * 250):
                address = f"127.{self._second}.{n // 250}.{n % 250 + 1}"
                if address in self._used or not all(_port_free(address, p) for p in wanted):
                    continue
                self._used.add(address)
                return Endpoint(address)
        raise NetworkError("no free loopback address")

    def destroy(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._used.discard(endpoint.address)

    def close(self) -> None:
        pass

    def site_dir(self) -> Path | None:
        return _SITE_DIR


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


TaskNetwork = NamespaceNetwork | LoopbackNetwork


def open_network(kind: str | None = None) -> TaskNetwork:
    """The network the environment asks for, else namespaces where possible, else loopback."""
    wanted = (kind or os.environ.get(NETWORK_ENV) or "").strip().lower()
    if wanted not in ("", "namespace", "loopback"):
        raise NetworkError(f"{NETWORK_ENV}={wanted!r}: expected namespace or loopback")
    if wanted == "loopback":
        return LoopbackNetwork()
    if wanted == "namespace" or namespaces_available():
        return NamespaceNetwork()
    return LoopbackNetwork()


@contextlib.contextmanager
def _machine_lock() -> Iterator[None]:
    _LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(_LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_subnet() -> ipaddress.IPv4Network:
    """A ``/24`` of the pool that no route of this machine overlaps."""
    result = subprocess.run(["ip", "-4", "-j", "route", "show", "table", "all"], capture_output=True, text=True)
    taken: list[ipaddress.IPv4Network] = []
    for route in json.loads(result.stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(dst, strict=False)
                if isinstance(net, ipaddress.IPv4Network):
                    taken.append(net)
    for subnet in _POOL.subnets(new_prefix=24):
        if not any(subnet.overlaps(t) for t in taken):
            return ipaddress.IPv4Network(subnet)
    raise NetworkError(f"no free /24 left in {_POOL}")


def sweep_stale() -> list[str]:
    """Remove namespaces and bridges left by sandboxes that no longer run; returns what went."""
    removed: list[str] = []
    names = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    try:
        spaces = [entry.get("name", "") for entry in json.loads(names or "[]")]
    except ValueError:
        spaces = []
    for name in spaces:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "dfw" and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
            for pid in pids:
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), 9)
            with contextlib.suppress(NetworkError):
                _ip("netns", "del", name)
                removed.append(name)
    links = subprocess.run(["ip", "-j", "link", "show", "type", "bridge"], capture_output=True, text=True).stdout
    try:
        bridges = [entry.get("ifname", "") for entry in json.loads(links or "[]")]
    except ValueError:
        bridges = []
    for bridge in bridges:
        pid = bridge[4:].split("x")[0]
        if bridge.startswith("dfwb") and pid.isdigit() and not _pid_alive(int(pid)):
            with contextlib.suppress(NetworkError):
                _ip("link", "del", bridge)
                removed.append(bridge)
    return removed
