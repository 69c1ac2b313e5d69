"""bctrain.step.cluster: TF_CONFIG checked whole, and the wait for the other workers bounded."""
import json
import re
import socket
import threading
import time

import pytest

from bctrain.config import ConfigError
from bctrain.step import cluster


def tf_config(workers, task_type="worker", index=0, **jobs):
    return json.dumps({"cluster": {"worker": workers, **jobs}, "task": {"type": task_type, "index": index}})


# The five TF_CONFIG of the reliability cases (D4), then one per other check.
MALFORMED = [
    ("{not json", "TF_CONFIG: not JSON"),
    ("[]", "TF_CONFIG: expected a JSON object"),
    (tf_config(["localhost:12345"], index=5), "TF_CONFIG: task.index: 5: expected 0 to 0 (cluster.worker lists 1 "
     "address)"),
    (tf_config(["localhost:12345", "localhost:12346"], "chief"), "TF_CONFIG: task.type: \"chief\": expected one of "
     "the cluster's jobs (worker)"),
    (tf_config("localhost:12345"), "TF_CONFIG: cluster.worker: expected a non-empty list of \"host:port\" strings"),
    (tf_config([]), "cluster.worker: expected a non-empty list"),
    (tf_config(["localhost"]), "cluster.worker[0]: \"localhost\": expected \"host:port\""),
    (tf_config(["a:1", "b:70000"]), "cluster.worker[1]: \"b:70000\": expected \"host:port\" (port 1-65535)"),
    (tf_config(["a:1", 5]), "cluster.worker[1]: 5"),
    (tf_config(["a:1", "a:1"]), "cluster: a:1 is listed twice"),
    (tf_config(["a:1"], ps=["b:2"]), "cluster.ps: not a job of multiworker training"),
    (tf_config(["a:1"], chief=["b:2", "c:3"]), "cluster.chief: expected a list of one \"host:port\" string"),
    (tf_config(["a:1"], index=True), "task.index: true"),
    (tf_config(["a:1"], index="0"), "task.index: \"0\""),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), "TF_CONFIG: task: expected an object"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}), "task.index: null"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "TF_CONFIG: cluster: expected an object"),
    (None, "strategy=multiworker needs TF_CONFIG"),
]


@pytest.mark.parametrize("text, words", MALFORMED)
def test_a_malformed_tf_config_is_one_line_naming_what_is_wrong(text, words):
    with pytest.raises(ConfigError) as info:
        cluster.parse(text)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_workers_and_a_chief_are_read():
    c = cluster.parse(tf_config(["h1:1", "h2:2"], index=1))
    assert (c.task_type, c.task_index, c.address, c.size) == ("worker", 1, "h2:2", 2)
    assert c.peers == [("worker", 0, "h1:1")]
    c = cluster.parse(tf_config(["[::1]:2", "h3:3"], "chief", 0, chief=["c:1"]))
    assert (c.address, c.size) == ("c:1", 3)
    assert c.peers == [("worker", 0, "[::1]:2"), ("worker", 1, "h3:3")]


def test_the_chief_else_worker_0_writes_results():
    assert [cluster.parse(tf_config(["a:1", "b:2"], index=i)).writes_results for i in (0, 1)] == [True, False]
    with_chief = [cluster.parse(tf_config(["a:1"], t, 0, chief=["c:3"])).writes_results for t in ("chief", "worker")]
    assert with_chief == [True, False]


@pytest.mark.parametrize("value, seconds", [(None, 120.0), ("", 120.0), ("2.5", 2.5), ("0", None), ("-1", None),
                                            ("inf", None), ("nan", None), ("soon", None)])
def test_the_peer_timeout_comes_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(cluster.TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(cluster.TIMEOUT_ENV, value)
    if seconds is None:
        with pytest.raises(ConfigError, match=f"{cluster.TIMEOUT_ENV}='{value}': expected a number of seconds > 0"):
            cluster.peer_timeout()
    else:
        assert cluster.peer_timeout() == seconds


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_in_threads(configs, timeout, delays=None):
    """Run wait_for_peers for each TF_CONFIG text in its own thread, starting after its delay in
    seconds; [(seconds from the first start to the end, None or the error)]."""
    results = [None] * len(configs)
    start = time.monotonic()

    def wait(i):
        time.sleep((delays or [0] * len(configs))[i])
        try:
            cluster.wait_for_peers(cluster.parse(configs[i]), timeout)
            results[i] = (time.monotonic() - start, None)
        except ConfigError as exc:
            results[i] = (time.monotonic() - start, str(exc))

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


def test_a_worker_that_never_answers_is_named_after_the_timeout():
    ports = free_ports(3)
    workers = [f"localhost:{ports[0]}", "nohost.invalid:1", f"localhost:{ports[2]}"]
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        cluster.wait_for_peers(cluster.parse(tf_config(workers, index=2)), timeout=0.5)
    assert time.monotonic() - start < 5
    assert str(info.value) == (f"TF_CONFIG: after 0.5 s still waiting for worker 0 at localhost:{ports[0]} "
                               "(Connection refused), worker 1 at nohost.invalid:1 (unknown host); start every worker "
                               "with the same TF_CONFIG cluster, or allow longer with BCTRAIN_PEER_TIMEOUT=SECONDS")


def test_a_worker_that_answers_but_never_says_hello_is_named():
    """Something listens at worker 0's address (another program, or a worker whose TF_CONFIG gives this
    one another address), but no hello of worker 0 ever arrives."""
    with socket.create_server(("", 0)) as other:
        workers = [f"localhost:{other.getsockname()[1]}", f"localhost:{free_ports(1)[0]}"]
        with pytest.raises(ConfigError, match=f"still waiting for worker 0 at {workers[0]} \\(it answers, but has "
                           "not reached this worker\\)"):
            cluster.wait_for_peers(cluster.parse(tf_config(workers, index=1)), timeout=0.5)


def test_workers_that_start_at_different_times_find_each_other():
    """Each worker listens on its own port while it waits, so the two waits end each other."""
    workers = [f"localhost:{p}" for p in free_ports(2)]
    (t0, e0), (t1, e1) = wait_in_threads([tf_config(workers, index=0), tf_config(workers, index=1)], 10, [0, 1])
    assert e0 is None and e1 is None
    assert 1 <= t0 < 3 and 1 <= t1 < 3  # once the second one is up


def test_a_worker_with_another_cluster_is_named_at_once():
    """Whichever of the two hears the other first names it at once; the other one then times out."""
    workers = [f"localhost:{p}" for p in free_ports(2)]
    results = wait_in_threads([tf_config(workers, index=0), tf_config(workers + ["localhost:1"], index=1)], 3)
    named = [(seconds, error) for seconds, error in results if "has another cluster" in error]
    assert len(named) >= 1 and named[0][0] < 2.5, results
    assert all(error for _, error in results)
    assert re.search(r"worker [01] at localhost:\d+ has another cluster \(.*\); every worker needs the same "
                     '"cluster"', named[0][1])


def test_a_port_in_use_on_this_task_is_one_line():
    with socket.create_server(("", 0)) as taken:
        port = taken.getsockname()[1]
        c = cluster.parse(tf_config([f"localhost:{port}", f"localhost:{free_ports(1)[0]}"]))
        with pytest.raises(ConfigError, match=f"this task's address localhost:{port}: cannot listen on port {port}"):
            cluster.wait_for_peers(c, timeout=1)


def test_a_single_worker_waits_for_nobody():
    with socket.create_server(("", 0)) as taken:  # its port is not even opened
        cluster.wait_for_peers(cluster.parse(tf_config([f"localhost:{taken.getsockname()[1]}"])), timeout=0.1)
