"""Routing: Traefik v3 rule language, priorities, entry points, load balancing."""

import collections
import re

import pytest

from conftest import pick_free_port
from helpers import Conn, curl, request


def yaml_str(s):
    """A single-quoted YAML scalar (no escapes inside, '' for ')."""
    return "'" + s.replace("'", "''") + "'"


class Routes:
    """weir with one origin per router; tells which router served a request."""

    def __init__(self, weir, origin, routes, entrypoints=("web",)):
        self.ports = {ep: pick_free_port() for ep in entrypoints}
        lines = ["entryPoints:"]
        for ep, port in self.ports.items():
            lines += [f"  {ep}:", f"    address: \"127.0.0.1:{port}\""]
        lines += ["http:", "  routers:"]
        services = []
        self.origins = {}
        for spec in routes:
            name, rule = spec["name"], spec["rule"]
            self.origins[name] = origin(name)
            lines += [f"    {name}:", f"      rule: {yaml_str(rule)}", f"      service: svc-{name}"]
            if "priority" in spec:
                lines.append(f"      priority: {spec['priority']}")
            if "entryPoints" in spec:
                lines.append(f"      entryPoints: [{', '.join(spec['entryPoints'])}]")
            services += [f"    svc-{name}:", "      loadBalancer:", "        servers:",
                         f"          - url: \"{self.origins[name].url}\""]
        lines += ["  services:"] + services
        self.weir = weir("\n".join(lines) + "\n")
        self.port = self.ports[entrypoints[0]]

    def hit(self, path="/", host="localhost", headers=None, method="GET", source=None,
            entrypoint=None):
        """The name of the router whose origin answered, or the status code."""
        port = self.ports[entrypoint] if entrypoint else self.port
        r = request(port, method, path, headers=headers, host=host, source=source)
        m = re.match(rb"origin=(\S+) ", r.body)
        if r.status == 200 and m:
            return m.group(1).decode()
        return r.status


def test_host_matches_case_insensitively_and_ignores_the_port(weir, origin):
    rt = Routes(weir, origin, [{"name": "site", "rule": "Host(`example.com`)"}])
    assert rt.hit(host="example.com") == "site"
    assert rt.hit(host="EXAMPLE.Com") == "site"
    assert rt.hit(host="example.com:8080") == "site"
    assert rt.hit(host="other.com") == 404
    assert rt.hit(host="sub.example.com") == 404


def test_curl_request_reaches_the_host_route(weir, origin):
    rt = Routes(weir, origin, [{"name": "site", "rule": "Host(`app.test`) && Path(`/hello`)"}])
    status, body, _ = curl(f"http://127.0.0.1:{rt.port}/hello", "-H", "Host: app.test")
    assert status == 200
    assert body.startswith(b"origin=site method=GET target=/hello")


def test_path_is_exact_and_path_prefix_is_a_prefix(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "exact", "rule": "Path(`/exact`)"},
        {"name": "prefix", "rule": "PathPrefix(`/api/`)"},
    ])
    assert rt.hit("/exact") == "exact"
    assert rt.hit("/exact?q=1") == "exact"
    assert rt.hit("/exact/more") == 404
    assert rt.hit("/api/") == "prefix"
    assert rt.hit("/api/v1/users") == "prefix"
    assert rt.hit("/ap") == 404


def test_longer_rule_wins_by_default(weir, origin):
    # Declared catch-all first: order must not matter, rule length does.
    rt = Routes(weir, origin, [
        {"name": "all", "rule": "PathPrefix(`/`)"},
        {"name": "api", "rule": "PathPrefix(`/api`)"},
        {"name": "apiv2", "rule": "PathPrefix(`/api/v2`)"},
    ])
    assert rt.hit("/") == "all"
    assert rt.hit("/index.html") == "all"
    assert rt.hit("/api/users") == "api"
    assert rt.hit("/api/v2/users") == "apiv2"


def test_explicit_priority_beats_rule_length(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "all", "rule": "PathPrefix(`/`)", "priority": 1000},
        {"name": "api", "rule": "PathPrefix(`/api`)", "priority": 10},
    ])
    assert rt.hit("/api/users") == "all"


def test_method_matcher(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "writes", "rule": "Method(`POST`) && Path(`/items`)"},
        {"name": "reads", "rule": "Path(`/items`)"},
    ])
    assert rt.hit("/items", method="POST", headers={"Content-Length": "0"}) == "writes"
    assert rt.hit("/items", method="GET") == "reads"


def test_header_and_header_regexp(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "canary", "rule": "Header(`X-Env`, `canary`)"},
        {"name": "versioned", "rule": "HeaderRegexp(`X-Version`, `^v[0-9]+$`)"},
        {"name": "fallback", "rule": "PathPrefix(`/`)", "priority": 1},
    ])
    assert rt.hit(headers={"X-Env": "canary"}) == "canary"
    assert rt.hit(headers={"x-env": "canary"}) == "canary"
    assert rt.hit(headers={"X-Env": "stable"}) == "fallback"
    assert rt.hit(headers={"X-Version": "v42"}) == "versioned"
    assert rt.hit(headers={"X-Version": "v4x"}) == "fallback"
    assert rt.hit() == "fallback"


def test_query_and_query_regexp(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "fast", "rule": "Query(`mode`, `fast`)"},
        {"name": "numeric", "rule": "QueryRegexp(`id`, `^[0-9]+$`)"},
        {"name": "fallback", "rule": "PathPrefix(`/`)", "priority": 1},
    ])
    assert rt.hit("/search?mode=fast") == "fast"
    assert rt.hit("/search?a=1&mode=fast&b=2") == "fast"
    assert rt.hit("/search?mode=slow") == "fallback"
    assert rt.hit("/item?id=123") == "numeric"
    assert rt.hit("/item?id=12a") == "fallback"


def test_host_regexp_and_path_regexp(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "tenant", "rule": r"HostRegexp(`^[a-z]+\.example\.com$`)"},
        {"name": "user", "rule": "PathRegexp(`^/users/[0-9]+$`)"},
    ])
    assert rt.hit(host="acme.example.com") == "tenant"
    assert rt.hit(host="acme.example.com:81") == "tenant"
    assert rt.hit(host="a1.example.com", path="/x") == 404
    assert rt.hit("/users/17") == "user"
    assert rt.hit("/users/abc") == 404


def test_client_ip_matcher(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "office", "rule": "ClientIP(`127.0.0.2`) || ClientIP(`127.0.1.0/24`)"},
        {"name": "public", "rule": "PathPrefix(`/`)", "priority": 1},
    ])
    assert rt.hit(source="127.0.0.2") == "office"
    assert rt.hit(source="127.0.1.9") == "office"
    assert rt.hit(source="127.0.0.1") == "public"


def test_and_or_not_and_parentheses(weir, origin):
    rule = ("Host(`shop.test`) && (Path(`/cart`) || PathPrefix(`/checkout/`))"
            " && !Header(`X-Blocked`, `1`)")
    rt = Routes(weir, origin, [{"name": "shop", "rule": rule}])
    assert rt.hit("/cart", host="shop.test") == "shop"
    assert rt.hit("/checkout/pay", host="shop.test") == "shop"
    assert rt.hit("/cart", host="shop.test", headers={"X-Blocked": "1"}) == 404
    assert rt.hit("/cart", host="other.test") == 404
    assert rt.hit("/profile", host="shop.test") == 404


def test_no_matching_route_is_404_with_a_short_plain_body(weir, origin):
    rt = Routes(weir, origin, [{"name": "only", "rule": "Path(`/only`)"}])
    r = request(rt.port, "GET", "/elsewhere")
    assert r.status == 404
    assert 0 < len(r.body) < 512
    assert b"<html" not in r.body.lower()
    assert rt.origins["only"].requests == []


def test_router_is_bound_to_its_entry_points(weir, origin):
    rt = Routes(weir, origin, [
        {"name": "public", "rule": "PathPrefix(`/`)", "entryPoints": ["web"]},
        {"name": "admin", "rule": "PathPrefix(`/`)", "entryPoints": ["admin"]},
        # no entryPoints: every entry point
        {"name": "both", "rule": "Path(`/both`)", "priority": 100},
    ], entrypoints=("web", "admin"))
    assert rt.hit("/x", entrypoint="web") == "public"
    assert rt.hit("/x", entrypoint="admin") == "admin"
    assert rt.hit("/both", entrypoint="web") == "both"
    assert rt.hit("/both", entrypoint="admin") == "both"


def count_origins(port, n):
    """Sends n GETs on one keep-alive connection; counts answers per origin."""
    counts = collections.Counter()
    with Conn(port) as c:
        for _ in range(n):
            r = c.request("GET", "/")
            assert r.status == 200, r
            counts[re.match(rb"origin=(\S+) ", r.body).group(1).decode()] += 1
    return counts


def test_weighted_service_splits_3_to_1(weir, origin, free_port):
    a, b = origin("a"), origin("b")
    weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            r:
              rule: "PathPrefix(`/`)"
              service: split
          services:
            split:
              weighted:
                services:
                  - name: svc-a
                    weight: 3
                  - name: svc-b
                    weight: 1
            svc-a:
              loadBalancer:
                servers:
                  - url: "{a.url}"
            svc-b:
              loadBalancer:
                servers:
                  - url: "{b.url}"
        """)
    counts = count_origins(free_port, 1000)
    assert 700 <= counts["a"] <= 800, counts
    assert 200 <= counts["b"] <= 300, counts
    assert counts["a"] + counts["b"] == 1000


def test_load_balancer_server_weights_3_to_1(weir, origin, free_port):
    a, b = origin("a"), origin("b")
    weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            r:
              rule: "PathPrefix(`/`)"
              service: svc
          services:
            svc:
              loadBalancer:
                servers:
                  - url: "{a.url}"
                    weight: 3
                  - url: "{b.url}"
                    weight: 1
        """)
    counts = count_origins(free_port, 1000)
    assert 700 <= counts["a"] <= 800, counts
    assert 200 <= counts["b"] <= 300, counts


def test_load_balancer_round_robins_equal_servers(weir, origin, free_port):
    a, b = origin("a"), origin("b")
    weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            r:
              rule: "PathPrefix(`/`)"
              service: svc
          services:
            svc:
              loadBalancer:
                servers:
                  - url: "{a.url}"
                  - url: "{b.url}"
        """)
    counts = count_origins(free_port, 200)
    assert 80 <= counts["a"] <= 120, counts
    assert 80 <= counts["b"] <= 120, counts


@pytest.mark.parametrize("path", ["/whoami", "/whoami/deeper?x=1"])
def test_whoami_internal_echoes_the_request(weir, free_port, path):
    weir(f"""
        entryPoints:
          web:
            address: "127.0.0.1:{free_port}"
        http:
          routers:
            who:
              rule: "PathPrefix(`/whoami`)"
              service: whoami@internal
        """)
    with Conn(free_port) as c:
        r = c.request("GET", path, headers={"X-Probe": "hello"}, host="who.test")
        local = c.sock.getsockname()
    assert r.status == 200
    assert f"GET {path} HTTP/1.1".encode() in r.body
    assert b"Host: who.test" in r.body
    assert b"X-Probe: hello" in r.body
    assert f"RemoteAddr: 127.0.0.1:{local[1]}".encode() in r.body
