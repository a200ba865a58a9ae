"""HTTP/2 abuse through weir: rapid reset, CONTINUATION flood, HPACK bomb,
SETTINGS and PING floods, a zero-window reader. Each attack is bounded in
frames and seconds; afterwards a second, normal client must still be served
by the same server (and weir must not have crashed: the fixture checks).

Targets as in test_h2_conformance.py (h2target.py): weir by default,
H2_TARGET=h2o|nghttpd|host:port for a reference server.
"""

import time

import pytest
from hyperframe.frame import GoAwayFrame, HeadersFrame, RstStreamFrame

from h2target import h2_target  # noqa: F401  (fixture)
from h2util import (CANCEL, COMPRESSION_ERROR, CONTINUATION, ENHANCE_YOUR_CALM, F_END_HEADERS,
                    F_END_STREAM, HEADERS, PING, PROTOCOL_ERROR, RST_STREAM, S_INITIAL_WINDOW_SIZE,
                    S_MAX_CONCURRENT_STREAMS, SETTINGS, WAIT, block, describe, err_name,
                    expect_closed, frame_bytes, indexed, literal, read_response, request_fields,
                    settings_payload)

ATTACK_SECONDS = 10.0   # no attack sends for longer than this
BATCH = 100             # frames per write


def flood(c, frames, total):
    """Sends `total` frames made by frames(i) in batches until the server
    goes away, total is reached or ATTACK_SECONDS pass. Returns how many
    were sent."""
    start = time.monotonic()
    sent = 0
    while sent < total and time.monotonic() - start < ATTACK_SECONDS:
        if not c.send_bytes(b"".join(frames(sent + i) for i in range(BATCH))):
            break
        sent += BATCH
    return sent


def expect_goaway_then_close(c, codes):
    g = c.wait_for(lambda f: isinstance(f, GoAwayFrame), WAIT)
    assert g is not None, f"no GOAWAY; {c.describe()}"
    assert g.error_code in codes, \
        f"GOAWAY {err_name(g.error_code)}, expected one of {[err_name(x) for x in codes]}"
    expect_closed(c)
    return g


def served(t):
    """A second, normal client gets its answer from the same server."""
    if t.weir:
        assert t.weir.running(), t.weir.logs_tail()
    with t.client() as c:
        c.get(1, "/hello")
        r = read_response(c, 1)
        assert (r.status, r.body) == (200, b"hello\n")


def test_rapid_reset_ends_in_goaway(h2_target):
    """CVE-2023-44487: HEADERS + RST_STREAM pairs, 5000 at most."""
    t = h2_target()
    with t.client() as c:
        request = block(request_fields("/slow"))

        def pair(i):
            sid = 1 + 2 * i
            return (frame_bytes(HEADERS, F_END_HEADERS | F_END_STREAM, sid, request)
                    + frame_bytes(RST_STREAM, 0, sid, CANCEL.to_bytes(4, "big")))
        flood(c, pair, 5000)
        expect_goaway_then_close(c, (ENHANCE_YOUR_CALM, PROTOCOL_ERROR))
    served(t)


@pytest.mark.parametrize("filled", [True, False], ids=["with-fields", "empty-frames"])
def test_continuation_flood_ends_in_goaway(h2_target, filled):
    """CVE-2024-27316 and kin: a header block that never ends, 20000
    CONTINUATION frames at most (each with a 110-byte field, or empty)."""
    t = h2_target()
    with t.client() as c:
        c.headers(1, request_fields(), end_headers=False)
        start = time.monotonic()
        flood(c, lambda i: frame_bytes(CONTINUATION, 0, 1, literal(f"x-flood-{i}", "v" * 96)
                                       if filled else b""), 20000)
        expect_goaway_then_close(c, (ENHANCE_YOUR_CALM, PROTOCOL_ERROR, COMPRESSION_ERROR))
        assert time.monotonic() - start < ATTACK_SECONDS + 2 * WAIT
    served(t)


def test_hpack_bomb_is_refused(h2_target):
    """One 4 KB entry in the dynamic table, then 2000 one-byte references to
    it: a 6 KB block that decodes to 8 MB of fields. The answer is a 431 or
    a reset (or a GOAWAY), never the request forwarded, never a crash."""
    t = h2_target()
    with t.client() as c:
        raw = (block(request_fields("/bomb")) + literal("x-bomb", "z" * 4000, indexing=True)
               + indexed(62) * 2000)
        c.headers(1, raw=raw)
        f = c.wait_for(lambda f: isinstance(f, GoAwayFrame) or (
            f.stream_id == 1 and isinstance(f, (RstStreamFrame, HeadersFrame))), WAIT * 2)
        assert f is not None, f"no answer to the bomb; {c.describe()}"
        if isinstance(f, HeadersFrame):
            assert dict(f.fields)[":status"] == "431", describe(f)
        elif isinstance(f, GoAwayFrame):
            assert f.error_code != 0, describe(f)
    if t.origin:
        assert "/bomb" not in t.origin.paths()
    served(t)


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_settings_and_ping_floods_end_in_enhance_your_calm(h2_target, kind):
    """10000 SETTINGS (or PING) frames at most, never reading the ACKs."""
    t = h2_target()
    with t.client() as c:
        if kind == "settings":
            one = frame_bytes(SETTINGS, 0, 0, settings_payload({S_MAX_CONCURRENT_STREAMS: 100}))
        else:
            one = frame_bytes(PING, 0, 0, b"floodme!")
        flood(c, lambda i: one, 10000)
        expect_goaway_then_close(c, (ENHANCE_YOUR_CALM,))
    served(t)


def test_zero_window_reader_is_ended_after_write_timeout(h2_target):
    """INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: with writeTimeout 1s
    the stream (RST_STREAM) or the connection (GOAWAY or close) ends after
    about a second."""
    t = h2_target("transport:\n  respondingTimeouts:\n    writeTimeout: 1s\n")
    if not t.is_weir:
        pytest.skip("needs weir's writeTimeout")
    with t.client({S_INITIAL_WINDOW_SIZE: 0}) as c:
        start = time.monotonic()
        c.get(1, "/big")
        f = c.wait_for(lambda f: isinstance(f, GoAwayFrame)
                       or (isinstance(f, RstStreamFrame) and f.stream_id == 1), 10)
        elapsed = time.monotonic() - start
        assert f is not None or c.eof, f"stream still open after {elapsed:.1f} s; {c.describe()}"
        assert 0.9 <= elapsed <= 6.0, f"ended after {elapsed:.2f} s; {c.describe()}"
    served(t)
