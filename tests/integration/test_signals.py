"""Signals: SIGTERM / SIGINT drain then exit 0."""

import signal
import threading
import time

from helpers import SLOW, Conn, connect_refused, get, poll, simple_config
from origin import Reply


def start_slow(weir, origin, free_port, delay, entrypoint_extra=""):
    o = origin("slow")
    o.route("/slow", Reply(200, "finished despite SIGTERM\n", delay=delay))
    w = weir(simple_config(free_port, [o.url], entrypoint_extra=entrypoint_extra))
    return w, o


def in_flight(port, path, result):
    def run():
        try:
            result["resp"] = get(port, path, timeout=30 * SLOW)
        except Exception as e:  # noqa: BLE001 - reported by the test
            result["error"] = e
        result["done_at"] = time.monotonic()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_sigterm_finishes_the_in_flight_request_then_exits_0(weir, origin, free_port):
    w, o = start_slow(weir, origin, free_port, delay=2.0)
    result = {}
    t = in_flight(free_port, "/slow", result)
    assert o.wait_for_requests(1, timeout=5 * SLOW), "the slow request never reached the origin"

    w.send_signal(signal.SIGTERM)
    # New connections are refused while the old request is still running.
    assert poll(lambda: connect_refused(free_port), 1.5 * SLOW), \
        "weir still accepts connections after SIGTERM"
    assert t.is_alive(), "the in-flight request ended before weir stopped listening"
    refused_at = time.monotonic()

    t.join(30 * SLOW)
    assert "error" not in result, f"in-flight request failed: {result.get('error')!r}"
    assert result["resp"].status == 200
    assert result["resp"].body == b"finished despite SIGTERM\n"
    assert result["done_at"] >= refused_at

    code = w.wait_exit(10 * SLOW)
    assert code == 0, f"weir exit code {code}\n{w.logs_tail()}"


def test_sigint_exits_0(weir, origin, free_port):
    w, o = start_slow(weir, origin, free_port, delay=0)
    assert get(free_port, "/").status == 200
    w.send_signal(signal.SIGINT)
    assert w.wait_exit(5 * SLOW) == 0
    assert connect_refused(free_port)


def test_idle_keep_alive_connections_do_not_hold_up_shutdown(weir, origin, free_port):
    w, o = start_slow(weir, origin, free_port, delay=0)  # graceTimeOut: default 10 s
    with Conn(free_port) as idle:
        assert idle.request("GET", "/").status == 200
        t0 = time.monotonic()
        w.send_signal(signal.SIGTERM)
        code = w.wait_exit(8 * SLOW)
        elapsed = time.monotonic() - t0
        assert code == 0, f"weir exit code {code} (None: still running)"
        assert elapsed < 3 * SLOW, f"an idle connection delayed exit by {elapsed:.1f} s"
        assert idle.is_closed_by_peer(1.0)


def test_grace_timeout_bounds_the_drain(weir, origin, free_port):
    w, o = start_slow(weir, origin, free_port, delay=8.0, entrypoint_extra="""
        transport:
          lifeCycle:
            graceTimeOut: 1s
        """)
    result = {}
    t = in_flight(free_port, "/slow", result)
    assert o.wait_for_requests(1, timeout=5 * SLOW)
    t0 = time.monotonic()
    w.send_signal(signal.SIGTERM)
    code = w.wait_exit(6 * SLOW)
    elapsed = time.monotonic() - t0
    assert code is not None, "weir ignored graceTimeOut: still running"
    assert 0.8 <= elapsed < 1 + 2 * SLOW, f"exited {elapsed:.1f} s after SIGTERM, grace 1 s"
    t.join(10 * SLOW)
    assert "resp" not in result or result["resp"].status != 200
