"""Configuration reload: the file provider's watch, broken files, SIGHUP."""

import os
import re
import signal
import textwrap
import threading
import time

from conftest import pick_free_port
from helpers import SANITIZED, SLOW, Conn, get, poll
from origin import Reply

# The spec: a change to a watched file is live within 2 s.
RELOAD_WITHIN = 6.0 if SANITIZED else 2.0


def route_yaml(*routes, services=""):
    """Dynamic YAML: one router per (name, path), each to whoami@internal,
    unless the route has a third element naming a service."""
    lines = ["http:", "  routers:"]
    for r in routes:
        name, path = r[0], r[1]
        service = r[2] if len(r) > 2 else "whoami@internal"
        lines += [f"    {name}:", f"      rule: \"Path(`{path}`)\"", f"      service: {service}"]
    if services:
        lines.append(textwrap.indent(textwrap.dedent(services).strip("\n"), "  "))
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def status(port, path):
    try:
        return get(port, path).status
    except (OSError, EOFError):
        return None


def becomes(port, path, want, within):
    """Polls until GET path answers `want`; returns the last status seen."""
    last = [None]

    def check():
        last[0] = status(port, path)
        return last[0] == want

    poll(check, within, interval=0.05)
    return last[0]


def stays(port, path, want, duration):
    """Checks GET path keeps answering `want` for `duration` seconds."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        got = status(port, path)
        if got != want:
            return got
        time.sleep(0.1)
    return want


def start_watched(weir, free_port, tmp_path, dynamic, watch=True, kind="filename",
                  settle=0.3, name="dyn"):
    """Starts weir with a file provider. `settle`: seconds to wait after weir
    listens before the test edits files (the edge right after startup has a
    test of its own, test_edit_right_after_startup_is_not_lost)."""
    target = tmp_path / (f"{name}.yml" if kind == "filename" else f"{name}.d")
    if kind == "directory":
        target.mkdir()
        (target / "a.yml").write_text(dynamic)
    else:
        target.write_text(dynamic)
    w = weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        providers:
          file:
            {kind}: "{target}"
            watch: {"true" if watch else "false"}
        """, name=f"{name}-static.yml")
    time.sleep(settle)
    return w, target


def test_new_route_in_watched_file_goes_live(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    assert status(free_port, "/a") == 200
    assert status(free_port, "/b") == 404
    write_atomically(dyn, route_yaml(("a", "/a"), ("b", "/b")))
    assert becomes(free_port, "/b", 200, RELOAD_WITHIN) == 200
    assert status(free_port, "/a") == 200


def test_edit_right_after_startup_is_not_lost(weir, free_port, tmp_path):
    # An edit made as soon as weir listens must not fall between loading the
    # file and watching it. Several fresh starts make the window likely.
    for i in range(8):
        port = pick_free_port()
        w, dyn = start_watched(weir, port, tmp_path, route_yaml(("a", "/a")), settle=0,
                               name=f"start{i}")
        write_atomically(dyn, route_yaml(("a", "/a"), ("b", "/b")))
        assert becomes(port, "/b", 200, RELOAD_WITHIN) == 200, f"edit lost on start {i}"
        w.send_signal(signal.SIGTERM)
        assert w.wait_exit(10 * SLOW) == 0


def test_in_place_edit_of_watched_file_goes_live(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    with open(dyn, "w") as f:  # truncate + write, as many editors do
        f.write(route_yaml(("a", "/a"), ("c", "/c")))
    assert becomes(free_port, "/c", 200, RELOAD_WITHIN) == 200
    assert becomes(free_port, "/a", 200, RELOAD_WITHIN) == 200


def test_removed_route_stops_serving(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a"), ("b", "/b")))
    assert status(free_port, "/b") == 200
    write_atomically(dyn, route_yaml(("a", "/a")))
    assert becomes(free_port, "/b", 404, RELOAD_WITHIN) == 404
    assert status(free_port, "/a") == 200


def test_new_route_to_a_new_service(weir, origin, free_port, tmp_path):
    o = origin("fresh")
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    write_atomically(dyn, route_yaml(("a", "/a"), ("n", "/new", "fresh"), services=f"""
        services:
          fresh:
            loadBalancer:
              servers:
                - url: "{o.url}"
        """))
    assert becomes(free_port, "/new", 200, RELOAD_WITHIN) == 200
    assert get(free_port, "/new").body.startswith(b"origin=fresh method=GET target=/new")


def test_rapid_successive_edits_end_with_the_last_one(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    for i in range(5):
        write_atomically(dyn, route_yaml(("a", "/a"), (f"v{i}", f"/v{i}")))
        time.sleep(0.1)
    # Any throttling may delay the last edit, but it must not be lost.
    assert becomes(free_port, "/v4", 200, RELOAD_WITHIN + 3 * SLOW) == 200
    assert status(free_port, "/v3") == 404


def test_broken_file_keeps_old_routes_and_logs_file_and_line(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    broken = route_yaml(("a", "/a"), ("b", "/b")).replace("      service: whoami@internal\n",
                                                          "      servce: whoami@internal\n", 1)
    write_atomically(dyn, broken)
    bad_line = broken.splitlines().index("      servce: whoami@internal") + 1

    def logged():
        return re.search(re.escape("dyn.yml") + f":{bad_line}:", w.stdout())

    assert poll(logged, RELOAD_WITHIN + 1), (
        f"no 'dyn.yml:{bad_line}:' in weir's stdout\n{w.logs_tail()}")
    assert stays(free_port, "/a", 200, 1.0) == 200
    assert status(free_port, "/b") == 404  # nothing of the broken file was applied

    # Fixing the file brings the new route.
    write_atomically(dyn, route_yaml(("a", "/a"), ("b", "/b")))
    assert becomes(free_port, "/b", 200, RELOAD_WITHIN + 2 * SLOW) == 200


def test_yaml_syntax_error_keeps_old_routes(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")))
    write_atomically(dyn, "http:\n  routers:\n    a: [unclosed\n      rule: \"Path(`/x`)\"\n")
    assert poll(lambda: re.search(r"dyn\.yml:\d+:", w.stdout()), RELOAD_WITHIN + 1), (
        w.logs_tail())
    assert stays(free_port, "/a", 200, 1.0) == 200
    assert w.running()


def test_new_file_in_watched_directory_goes_live(weir, free_port, tmp_path):
    w, d = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")), kind="directory")
    assert status(free_port, "/a") == 200
    write_atomically(d / "b.yml", route_yaml(("b", "/b")))
    assert becomes(free_port, "/b", 200, RELOAD_WITHIN) == 200
    os.remove(d / "a.yml")
    assert becomes(free_port, "/a", 404, RELOAD_WITHIN) == 404
    assert status(free_port, "/b") == 200


def test_sighup_reloads_an_unwatched_file(weir, free_port, tmp_path):
    w, dyn = start_watched(weir, free_port, tmp_path, route_yaml(("a", "/a")), watch=False)
    write_atomically(dyn, route_yaml(("a", "/a"), ("b", "/b")))
    assert stays(free_port, "/b", 404, 1.5) == 404, "watch: false, yet the edit was applied"
    w.send_signal(signal.SIGHUP)
    assert becomes(free_port, "/b", 200, RELOAD_WITHIN) == 200
    assert w.running()


def test_sighup_reloads_dynamic_sections_of_the_static_file(weir, free_port, tmp_path):
    static = f"entryPoints:\n  web:\n    address: \"127.0.0.1:{free_port}\"\n"
    w = weir(static + route_yaml(("a", "/a")))
    assert status(free_port, "/a") == 200
    write_atomically(w.config_path, static + route_yaml(("b", "/b")))
    w.send_signal(signal.SIGHUP)
    assert becomes(free_port, "/b", 200, RELOAD_WITHIN) == 200
    assert becomes(free_port, "/a", 404, RELOAD_WITHIN) == 404


def test_reload_keeps_open_connections_and_in_flight_requests(weir, origin, free_port,
                                                              tmp_path):
    o = origin("slow")
    o.route("/slow", Reply(200, "slow but fine\n", delay=1.5))
    services = f"""
        services:
          slow:
            loadBalancer:
              servers:
                - url: "{o.url}"
        """
    w, dyn = start_watched(weir, free_port, tmp_path,
                           route_yaml(("s", "/slow", "slow"), ("a", "/a"), services=services))
    result = {}

    def slow_request():
        result["resp"] = get(free_port, "/slow", timeout=15 * SLOW)

    with Conn(free_port) as idle:
        assert idle.request("GET", "/a").status == 200
        t = threading.Thread(target=slow_request)
        t.start()
        o.wait_for_requests(1, timeout=5 * SLOW)
        write_atomically(dyn, route_yaml(("s", "/slow", "slow"), ("a", "/a"), ("b", "/b"),
                                         services=services))
        assert becomes(free_port, "/b", 200, RELOAD_WITHIN) == 200
        # The keep-alive connection opened before the reload serves the new routes.
        assert idle.request("GET", "/b").status == 200
        t.join(15 * SLOW)
    assert result["resp"].status == 200
    assert result["resp"].body == b"slow but fine\n"


def test_reloads_under_load_lose_no_request(weir, origin, free_port, tmp_path):
    # Eight keep-alive clients send requests through weir to an origin while
    # the configuration is reloaded again and again (SIGHUP): every request gets
    # its 200, and the pool keeps its warm origin connections across reloads.
    o = origin("o")
    o.default = Reply(200, "steady\n")
    services = f"""
        services:
          o:
            loadBalancer:
              servers:
                - url: "{o.url}"
        """
    w, dyn = start_watched(weir, free_port, tmp_path,
                           route_yaml(("r", "/steady", "o"), services=services))
    per_client = 200 if SANITIZED else 500
    results = []
    lock = threading.Lock()

    def client():
        statuses = []
        try:
            with Conn(free_port) as c:
                for _ in range(per_client):
                    statuses.append(c.request("GET", "/steady").status)
        except OSError as e:
            statuses.append(repr(e))
        with lock:
            results.extend(statuses)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    hups = 0
    while any(t.is_alive() for t in threads) and hups < 200:
        os.kill(w.pid, signal.SIGHUP)
        hups += 1
        time.sleep(0.01)
    for t in threads:
        t.join(60 * SLOW)
    assert len(results) == 8 * per_client
    assert all(s == 200 for s in results), [s for s in results if s != 200][:5]
    assert hups >= 5, "the clients finished before the reloads could overlap them"
    assert w.proc.poll() is None
