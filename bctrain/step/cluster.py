"""The cluster of a multiworker run, read from TF_CONFIG: checked whole, then waited for (§1 step).

`tf.distribute.MultiWorkerMirroredStrategy` reads the cluster and this process's task from the
TF_CONFIG environment variable. It fails on a malformed one with a traceback, some only after the
run directory was written, so `parse` checks all of it before TensorFlow is imported and names
what is wrong in one line. Accepted, as that strategy defines them: jobs "worker" (a non-empty list
of distinct "host:port" strings) and an optional "chief" (one "host:port"); task type "worker" or
"chief" (a job the cluster has), index in range.

Creating the strategy blocks inside TensorFlow until every worker has joined, with no time limit
and holding the interpreter lock, so neither Ctrl-C nor SIGTERM is acted on. `wait_for_peers`
waits first, in Python, where signals are delivered and time can be counted: this worker listens
on its own port (the one TensorFlow serves on next) and sends each other worker its cluster, until
it has reached every other worker and heard from each; TensorFlow's join then takes a moment. After
BCTRAIN_PEER_TIMEOUT seconds (default 120) it names the workers still missing; a worker whose
TF_CONFIG has another cluster is named at once. Stdlib only.
"""
import dataclasses
import json
import math
import os
import re
import select
import socket
import time

from bctrain.config import ConfigError

ENV = "TF_CONFIG"
TIMEOUT_ENV = "BCTRAIN_PEER_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's jobs; the chief, if any, writes results
POLL_SECONDS = 0.25
_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*):([0-9]{1,5})")


@dataclasses.dataclass(frozen=True)
class Cluster:
    jobs: dict        # {"worker": ("host:port", ...), "chief": ("host:port",)}
    task_type: str    # "worker" or "chief"
    task_index: int

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]

    @property
    def peers(self) -> list:
        """(job, index, address) of every other task."""
        return [(job, i, a) for job in JOBS for i, a in enumerate(self.jobs.get(job, ())) if a != self.address]

    @property
    def writes_results(self) -> bool:
        """The chief, if the cluster has one, else worker 0 (as bctrain.step.strategy.is_chief)."""
        return self.task_type == "chief" or ("chief" not in self.jobs and self.task_index == 0)

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.jobs.values())


def _error(what: str):
    return ConfigError(f"{ENV}: {what}")


def _addresses(job: str, value, at_most=None) -> tuple:
    if not isinstance(value, list) or not value or (at_most and len(value) > at_most):
        expected = "a list of one \"host:port\" string" if at_most == 1 else "a non-empty list of \"host:port\" strings"
        raise _error(f"cluster.{job}: expected {expected}, got {json.dumps(value)}")
    for i, address in enumerate(value):
        m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
        if not m or not 0 < int(m.group(2)) < 65536:
            raise _error(f"cluster.{job}[{i}]: {json.dumps(address)}: expected \"host:port\" (port 1-65535)")
    return tuple(value)


def parse(text) -> Cluster:
    """The cluster described by the TF_CONFIG text `text` (None: not set), or a one-line ConfigError."""
    if text is None:
        raise ConfigError("strategy=multiworker needs TF_CONFIG naming the cluster and this task "
                          "(README: 'Several devices and hosts')")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise _error(f"not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _error(f"expected a JSON object {{\"cluster\": ..., \"task\": ...}}, got {json.dumps(config)[:60]}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or "worker" not in cluster:
        raise _error("cluster: expected an object with \"worker\": [\"host:port\", ...]")
    other = sorted(set(cluster) - set(JOBS))
    if other:
        raise _error(f"cluster.{other[0]}: not a job of multiworker training (expected worker and an optional chief)")
    jobs = {job: _addresses(job, cluster[job], 1 if job == "chief" else None) for job in JOBS if job in cluster}
    listed = [a for addresses in jobs.values() for a in addresses]
    twice = sorted({a for a in listed if listed.count(a) > 1})
    if twice:
        raise _error(f"cluster: {twice[0]} is listed twice; every task needs its own host:port")
    task = config.get("task")
    if not isinstance(task, dict):
        raise _error("task: expected an object {\"type\": \"worker\", \"index\": N} naming this process")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in jobs:
        raise _error(f"task.type: {json.dumps(task_type)}: expected one of the cluster's jobs ({', '.join(jobs)})")
    if type(index) is not int or not 0 <= index < len(jobs[task_type]):
        raise _error(f"task.index: {json.dumps(index)}: expected 0 to {len(jobs[task_type]) - 1} (cluster.{task_type} "
                     f"lists {len(jobs[task_type])} address{'es' if len(jobs[task_type]) != 1 else ''})")
    return Cluster(jobs, task_type, index)


def from_env() -> Cluster:
    return parse(os.environ.get(ENV))


def peer_timeout() -> float:
    """Seconds to wait for the other workers: BCTRAIN_PEER_TIMEOUT, default 120."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text.strip() else DEFAULT_TIMEOUT
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds > 0")
    return seconds


def _host_port(address: str):
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def _say_hello(address: str, hello: bytes, seconds: float):
    """None if `address` accepted a connection within `seconds` and took `hello`, else why not."""
    try:
        with socket.create_connection(_host_port(address), timeout=seconds) as conn:
            conn.sendall(hello)
        return None
    except socket.gaierror:
        return "unknown host"
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def _hellos(server: socket.socket, seconds: float) -> list:
    """The hellos ({"from": address, "cluster": jobs}) other workers sent within `seconds`; whatever
    else connects (a port scanner, an old worker) is ignored."""
    hellos = []
    end = time.monotonic() + seconds
    while select.select([server], [], [], max(end - time.monotonic(), 0))[0]:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(1.0)
            data = b""
            try:
                while not data.endswith(b"\n") and len(data) < 65536 and (chunk := conn.recv(4096)):
                    data += chunk
                hello = json.loads(data)
            except (OSError, ValueError):
                continue
        if isinstance(hello, dict) and isinstance(hello.get("from"), str):
            hellos.append(hello)
    return hellos


def _listen(address: str) -> socket.socket:
    """Listen on this task's port (every interface, as TensorFlow's server does), so the others see it."""
    port = _host_port(address)[1]
    try:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        return socket.create_server(("", port))
    except OSError as exc:
        raise _error(f"this task's address {address}: cannot listen on port {port} ({exc.strerror or exc}; "
                     "a worker of an earlier run still running?)") from None


def wait_for_peers(cluster: Cluster, timeout: float):
    """Return once this task has reached every other task of `cluster` and each of them has reached
    this one (so each knows the others are up, and each will go on to TensorFlow's join); a one-line
    ConfigError naming the ones missing after `timeout` seconds, or a worker with another cluster.
    Interruptible: it waits in Python, in steps of POLL_SECONDS."""
    peers = {address: f"{job} {i}" for job, i, address in cluster.peers}
    if not peers:
        return
    jobs = json.loads(json.dumps(cluster.jobs))  # as the others' hellos carry it
    hello = (json.dumps({"from": cluster.address, "cluster": jobs}) + "\n").encode()
    deadline = time.monotonic() + timeout
    why, heard = {a: "no answer" for a in peers}, set()
    with _listen(cluster.address) as server:
        while True:
            for a in [a for a in peers if why[a]]:
                why[a] = _say_hello(a, hello, min(1.0, max(deadline - time.monotonic(), 0.05)))
            for h in _hellos(server, POLL_SECONDS):
                if h["from"] in peers and h.get("cluster") != jobs:
                    other = json.dumps(h.get("cluster"))
                    raise _error(f"{peers[h['from']]} at {h['from']} has another cluster ({other}); every worker "
                                 "needs the same \"cluster\"")
                heard.add(h["from"])
            if not any(why.values()) and heard >= peers.keys():
                return
            if time.monotonic() >= deadline:
                missing = [f"{task} at {a} ({why[a] or 'it answers, but has not reached this worker'})"
                           for a, task in peers.items() if why[a] or a not in heard]
                raise _error(f"after {timeout:g} s still waiting for {', '.join(missing)}; start every worker with "
                             f"the same TF_CONFIG cluster, or allow longer with {TIMEOUT_ENV}=SECONDS")
