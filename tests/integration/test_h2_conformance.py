"""HTTP/2 conformance through weir (RFC 9113), frame by frame: one case per
requirement, each checking the exact outcome: a GOAWAY with its error code,
a RST_STREAM with its code on its stream, or a correct response.

Each case gets a fresh connection whose preface and SETTINGS exchange are
done; `Conn` helpers build valid and broken frames (h2util.py)."""

import struct

import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame,
                              PriorityFrame, PushPromiseFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from conftest import pick_free_port
from h2util import (COMPRESSION_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, H2, NO_ERROR,
                    PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, STREAM_CLOSED, raw_frame)
from origin import Reply

T_DATA, T_HEADERS, T_PRIORITY, T_RST, T_SETTINGS, T_PUSH, T_PING, T_GOAWAY, T_WU, T_CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One weir for the module: h2c on a plain entry point, an origin that
    echoes, /who → whoami@internal."""
    import subprocess, os, time, signal
    from origin import Origin
    from conftest import WEIR_BIN, wait_for_port
    d = tmp_path_factory.mktemp("h2conf")
    o = Origin("conf")
    o.route("/big", Reply(200, stream=200000))
    port = pick_free_port()
    cfg = d / "weir.yml"
    cfg.write_text(f"""entryPoints:
  web:
    address: "127.0.0.1:{port}"
    http2: {{maxConcurrentStreams: 100}}
http:
  routers:
    r: {{rule: "PathPrefix(`/`)", service: app}}
  services:
    app:
      loadBalancer:
        servers: [{{url: "{o.url}"}}]
""")
    log = open(d / "weir.log", "wb")
    p = subprocess.Popen([WEIR_BIN, "-c", str(cfg)], stdout=log, stderr=log, cwd=str(d),
                         start_new_session=True)
    problem = wait_for_port(port, 10, p, "weir")
    assert not problem, problem
    yield port, o
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        code = p.wait()
    o.stop()
    log.close()
    out = (d / "weir.log").read_text(errors="replace")
    assert code == 0, out[-3000:]
    assert "ERROR: AddressSanitizer" not in out and "runtime error:" not in out, out[-6000:]


@pytest.fixture
def c(server):
    port, _ = server
    conn = H2(port)
    # the server's SETTINGS, then its ACK of ours
    assert conn.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    yield conn
    conn.close()


def expect_goaway(c, code):
    g = c.goaway()
    assert g is not None, "no GOAWAY"
    assert g.error_code == code, f"GOAWAY {g.error_code}, expected {code}"
    assert c.is_closed(3), "connection left open after GOAWAY"


def expect_rst(c, sid, code):
    f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == sid) or
                   isinstance(f, GoAwayFrame))
    assert f is not None, "neither RST_STREAM nor GOAWAY"
    assert isinstance(f, RstStreamFrame), f"GOAWAY {f.error_code} instead of RST_STREAM"
    assert f.error_code == code, f"RST_STREAM {f.error_code}, expected {code}"


def expect_stream_error(c, sid, code):
    """A stream error of type `code`: RST_STREAM on sid, or the same error
    raised to a connection error (RFC 9113 §5.4.1 lets an endpoint end the
    connection for any error; nghttp2 does so for PRIORITY and
    WINDOW_UPDATE errors)."""
    f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == sid) or
                   isinstance(f, GoAwayFrame))
    assert f is not None, "neither RST_STREAM nor GOAWAY"
    assert f.error_code == code, f"{type(f).__name__} {f.error_code}, expected {code}"


def expect_ok(c, sid, status=200):
    r = c.response(sid)
    assert r is not None, f"stream {sid} got no response"
    assert r[0] == status
    return r


def still_serves(c, sid):
    c.get(sid, "/alive")
    expect_ok(c, sid)


def hdr_block(c, path="/", method="GET", extra=()):
    return c.block(c.request_headers(path, method, "conf.test", extra))


# ---- §3.4 connection preface ----

def test_3_4_bad_preface(server):
    port, _ = server
    c = H2(port, preface=False)
    c.send_raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + raw_frame(T_SETTINGS, 0, 0, b""))
    g = c.goaway()
    assert g is None or g.error_code == PROTOCOL_ERROR
    assert c.is_closed(3)


def test_3_4_first_frame_must_be_settings(server):
    port, _ = server
    c = H2(port, preface=False)
    c.send_raw(PREFACE + raw_frame(T_PING, 0, 0, b"12345678"))
    expect_goaway(c, PROTOCOL_ERROR)


# ---- §4.1 frame format ----

def test_4_1_unknown_frame_type_is_ignored(c):
    c.send_raw(raw_frame(0xee, 0, 0, b"whatever"))
    still_serves(c, 1)


def test_4_1_unknown_flags_are_ignored(c):
    c.send_raw(raw_frame(T_PING, 0x10 | 0x40, 0, b"abcdefgh"))
    f = c.wait_for(lambda f: isinstance(f, PingFrame))
    assert "ACK" in f.flags and f.opaque_data == b"abcdefgh"


def test_4_1_reserved_bit_is_ignored(c):
    block = hdr_block(c)
    frame = bytearray(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, block))
    frame[5] |= 0x80
    c.send_raw(bytes(frame))
    expect_ok(c, 1)


# ---- §4.2 frame size ----

def test_4_2_data_over_max_frame_size(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_DATA, 0, 1, b"x" * 16385))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_4_2_headers_over_max_frame_size(c):
    block = hdr_block(c, extra=[("x-big", "~" * 20000)])  # '~' does not shrink in HPACK
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, block))
    expect_goaway(c, FRAME_SIZE_ERROR)


# ---- §4.3 field section compression ----

def test_4_3_invalid_hpack_index(c):
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, b"\xff\xff\xff\x0f"))
    expect_goaway(c, COMPRESSION_ERROR)


def test_4_3_table_size_update_over_limit(c):
    # dynamic table size update to 2^20 > SETTINGS_HEADER_TABLE_SIZE (4096)
    block = b"\x3f\xe1\xff\x3f" + hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, block))
    expect_goaway(c, COMPRESSION_ERROR)


def test_4_3_table_size_update_after_field(c):
    block = hdr_block(c) + b"\x20"
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, block))
    expect_goaway(c, COMPRESSION_ERROR)


def test_4_3_header_block_split_over_continuation(c):
    block = hdr_block(c, extra=[("x-a", "1"), ("x-b", "2")])
    c.send_raw(raw_frame(T_HEADERS, END_STREAM, 1, block[:5]) +
               raw_frame(T_CONT, 0, 1, block[5:10]) + raw_frame(T_CONT, END_HEADERS, 1, block[10:]))
    expect_ok(c, 1)


# ---- §5.1 stream states ----

def test_5_1_data_on_idle_stream(c):
    c.send_raw(raw_frame(T_DATA, 0, 1, b"x"))
    expect_goaway(c, PROTOCOL_ERROR)


def test_5_1_rst_stream_on_idle_stream(c):
    c.send_raw(raw_frame(T_RST, 0, 1, struct.pack(">I", 8)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_5_1_window_update_on_idle_stream(c):
    c.send_raw(raw_frame(T_WU, 0, 1, struct.pack(">I", 100)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_5_1_data_on_half_closed_remote(c):
    c.get(1, "/big")  # END_STREAM: half-closed (remote) on the server
    c.send_raw(raw_frame(T_DATA, 0, 1, b"late"))
    f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == 1) or
                   isinstance(f, GoAwayFrame))
    assert f is not None and f.error_code == STREAM_CLOSED


def test_5_1_headers_on_half_closed_remote(c):
    c.get(1, "/big")
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, hdr_block(c)))
    f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == 1) or
                   isinstance(f, GoAwayFrame))
    assert f is not None and f.error_code == STREAM_CLOSED


def test_5_1_data_on_stream_closed_by_rst(c):
    """§5.1 closed: frames on a stream the client reset are a (connection
    or stream) error of type STREAM_CLOSED."""
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.rst_stream(1)
    c.send_raw(raw_frame(T_DATA, 0, 1, b"after reset"))
    expect_stream_error(c, 1, STREAM_CLOSED)


def test_5_1_1_even_stream_id(c):
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 2, hdr_block(c)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_5_1_1_decreasing_stream_id(c):
    c.get(5, "/")
    expect_ok(c, 5)
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 3, hdr_block(c)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_5_1_1_stream_ids_may_skip(c):
    c.get(1, "/")
    expect_ok(c, 1)
    c.get(101, "/")
    expect_ok(c, 101)


def test_5_5_unknown_extension_frame_inside_stream(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(0xfa, 0, 1, b"ext"))
    c.data(1, b"body", end_stream=True)
    expect_ok(c, 1)


# ---- §6.1 DATA ----

def test_6_1_data_on_stream_zero(c):
    c.send_raw(raw_frame(T_DATA, 0, 0, b"x"))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_1_data_padding_too_long(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_DATA, PADDED | END_STREAM, 1, b"\x05abc"))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_1_data_with_valid_padding(c, server):
    _, o = server
    c.headers(1, c.request_headers("/padded", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0"))
    expect_ok(c, 1)
    assert [r.body for r in o.requests if r.path == "/padded"][-1] == b"abc"


def test_6_1_post_body_reaches_origin(c, server):
    _, o = server
    c.headers(1, c.request_headers("/post", "POST", "conf.test", [("content-length", "11")]),
              end_stream=False)
    c.data(1, b"hello", end_stream=False)
    c.data(1, b" world", end_stream=True)
    expect_ok(c, 1)
    assert [r.body for r in o.requests if r.path == "/post"][-1] == b"hello world"


# ---- §6.2 HEADERS ----

def test_6_2_headers_on_stream_zero(c):
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 0, hdr_block(c)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_2_headers_padding_too_long(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, PADDED | END_STREAM | END_HEADERS, 1,
                         bytes([len(block) + 10]) + block))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_2_headers_with_padding(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, PADDED | END_STREAM | END_HEADERS, 1,
                         bytes([4]) + block + b"\0" * 4))
    expect_ok(c, 1)


def test_6_2_headers_priority_self_dependency(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, PRIORITY_FLAG | END_STREAM | END_HEADERS, 1,
                         struct.pack(">IB", 1, 15) + block))
    expect_stream_error(c, 1, PROTOCOL_ERROR)


def test_6_2_headers_with_priority(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, PRIORITY_FLAG | END_STREAM | END_HEADERS, 1,
                         struct.pack(">IB", 0, 200) + block))
    expect_ok(c, 1)


def test_6_2_other_frame_between_headers_and_continuation(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, END_STREAM, 1, block[:4]) +
               raw_frame(T_PING, 0, 0, b"12345678") + raw_frame(T_CONT, END_HEADERS, 1, block[4:]))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_2_continuation_on_other_stream(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, END_STREAM, 1, block[:4]) +
               raw_frame(T_CONT, END_HEADERS, 3, block[4:]))
    expect_goaway(c, PROTOCOL_ERROR)


# ---- §6.3 PRIORITY ----

def test_6_3_priority_on_stream_zero(c):
    c.send_raw(raw_frame(T_PRIORITY, 0, 0, struct.pack(">IB", 1, 15)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_3_priority_wrong_length(c):
    c.send_raw(raw_frame(T_PRIORITY, 0, 1, struct.pack(">I", 0)))
    expect_stream_error(c, 1, FRAME_SIZE_ERROR)


def test_6_3_priority_on_idle_stream_is_allowed(c):
    c.send_raw(raw_frame(T_PRIORITY, 0, 3, struct.pack(">IB", 0, 15)))
    c.get(1, "/")
    expect_ok(c, 1)


def test_6_3_priority_self_dependency(c):
    c.send_raw(raw_frame(T_PRIORITY, 0, 1, struct.pack(">IB", 1, 15)))
    expect_stream_error(c, 1, PROTOCOL_ERROR)


# ---- §6.4 RST_STREAM ----

def test_6_4_rst_stream_on_stream_zero(c):
    c.send_raw(raw_frame(T_RST, 0, 0, struct.pack(">I", 8)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_4_rst_stream_wrong_length(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_RST, 0, 1, b"\0\0\0\x08\0"))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_6_4_rst_stream_then_more_streams(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.rst_stream(1)
    still_serves(c, 3)


# ---- §6.5 SETTINGS ----

def test_6_5_settings_ack_with_payload(c):
    c.send_raw(raw_frame(T_SETTINGS, ACK, 0, struct.pack(">HI", 3, 100)))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_6_5_settings_on_nonzero_stream(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 1, b""))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_5_settings_length_not_multiple_of_6(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, b"\0\x03\0\0\0\x64\0"))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_6_5_2_enable_push_invalid(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 2, 2)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_5_2_initial_window_size_too_large(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 4, 2**31)))
    expect_goaway(c, FLOW_CONTROL_ERROR)


def test_6_5_2_max_frame_size_too_small(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 5, 16383)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_5_2_max_frame_size_too_large(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 5, 2**24)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_5_2_unknown_setting_is_ignored(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 0xabc, 7)))
    f = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
    assert f is not None
    still_serves(c, 1)


def test_6_5_3_settings_are_acknowledged(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 3, 50)))
    f = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
    assert f is not None and f.settings == {}


# ---- §6.6 PUSH_PROMISE ----

def test_6_6_push_promise_from_client(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_PUSH, END_HEADERS, 1, struct.pack(">I", 2) + hdr_block(c)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_6_settings_enable_push_zero_is_fine(c):
    c.send_raw(raw_frame(T_SETTINGS, 0, 0, struct.pack(">HI", 2, 0)))
    still_serves(c, 1)


# ---- §6.7 PING ----

def test_6_7_ping_is_answered_with_same_payload(c):
    c.ping(b"weir!ok!")
    f = c.wait_for(lambda f: isinstance(f, PingFrame))
    assert "ACK" in f.flags and f.opaque_data == b"weir!ok!"


def test_6_7_ping_on_nonzero_stream(c):
    c.send_raw(raw_frame(T_PING, 0, 1, b"12345678"))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_7_ping_wrong_length(c):
    c.send_raw(raw_frame(T_PING, 0, 0, b"1234567"))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_6_7_ping_ack_is_not_answered(c):
    c.ping(b"ackedack", ack=True)
    c.get(1, "/")
    frames = []
    r = c.wait_for(lambda f: frames.append(f) or ("END_STREAM" in f.flags and f.stream_id == 1))
    assert r is not None
    assert not any(isinstance(f, PingFrame) for f in frames)


# ---- §6.8 GOAWAY ----

def test_6_8_goaway_on_nonzero_stream(c):
    c.send_raw(raw_frame(T_GOAWAY, 0, 1, struct.pack(">II", 0, 0)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_8_client_goaway_lets_open_streams_finish(c):
    c.get(1, "/")
    c.send_raw(raw_frame(T_GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
    expect_ok(c, 1)


# ---- §6.9 WINDOW_UPDATE ----

def test_6_9_zero_increment_on_connection(c):
    c.send_raw(raw_frame(T_WU, 0, 0, struct.pack(">I", 0)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_9_zero_increment_on_stream(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_WU, 0, 1, struct.pack(">I", 0)))
    expect_stream_error(c, 1, PROTOCOL_ERROR)


def test_6_9_window_update_wrong_length(c):
    c.send_raw(raw_frame(T_WU, 0, 0, b"\0\0\0\x01\0"))
    expect_goaway(c, FRAME_SIZE_ERROR)


def test_6_9_1_connection_window_overflow(c):
    c.send_raw(raw_frame(T_WU, 0, 0, struct.pack(">I", 2**31 - 1)))
    expect_goaway(c, FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.send_raw(raw_frame(T_WU, 0, 1, struct.pack(">I", 2**31 - 1)))
    expect_stream_error(c, 1, FLOW_CONTROL_ERROR)


def test_6_9_2_initial_window_zero_holds_data_until_update(server):
    port, _ = server
    c = H2(port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.get(1, "/big")
    frames = c.frames(1.0)
    assert any(isinstance(f, HeadersFrame) and f.stream_id == 1 for f in frames)
    assert not any(isinstance(f, DataFrame) and f.data for f in frames)
    c.window_update(1, 300000)
    c.window_update(0, 300000)
    got = 0
    while True:
        f = c.read_frame(5)
        assert f is not None
        if isinstance(f, DataFrame):
            got += len(f.data)
            if "END_STREAM" in f.flags:
                break
    assert got == 200000


def test_6_9_2_small_window_limits_data_frames(server):
    port, _ = server
    c = H2(port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 100})
    c.get(1, "/big")
    frames = c.frames(1.0)
    data = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == 1]
    assert data and sum(len(f.data) for f in data) == 100


def test_6_9_2_settings_change_adjusts_open_windows(server):
    port, _ = server
    c = H2(port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.get(1, "/big")
    c.frames(0.5)
    f = SettingsFrame(0)
    f.settings[SettingsFrame.INITIAL_WINDOW_SIZE] = 1000
    c.send(f)
    data = [f for f in c.frames(1.0) if isinstance(f, DataFrame) and f.stream_id == 1]
    assert sum(len(f.data) for f in data) == 1000


# ---- §6.10 CONTINUATION ----

def test_6_10_continuation_without_headers(c):
    c.send_raw(raw_frame(T_CONT, END_HEADERS, 1, hdr_block(c)))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_10_continuation_on_stream_zero(c):
    block = hdr_block(c)
    c.send_raw(raw_frame(T_HEADERS, END_STREAM, 1, block[:4]) +
               raw_frame(T_CONT, END_HEADERS, 0, block[4:]))
    expect_goaway(c, PROTOCOL_ERROR)


def test_6_10_continuation_after_end_headers(c):
    c.send_raw(raw_frame(T_HEADERS, END_HEADERS, 1, hdr_block(c)) +
               raw_frame(T_CONT, END_HEADERS, 1, c.block([("x-late", "1")])))
    expect_goaway(c, PROTOCOL_ERROR)


# ---- §8 HTTP semantics ----

def bad_request(c, headers, sid=1):
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, sid, c.block(headers)))
    expect_rst(c, sid, PROTOCOL_ERROR)


BASE = [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "conf.test")]


def test_8_2_uppercase_field_name(c):
    bad_request(c, BASE + [("X-Upper", "1")])


def test_8_2_2_connection_header(c):
    bad_request(c, BASE + [("connection", "close")])


def test_8_2_2_keep_alive_header(c):
    bad_request(c, BASE + [("keep-alive", "5")])


def test_8_2_2_transfer_encoding_header(c):
    bad_request(c, BASE + [("transfer-encoding", "chunked")])


def test_8_2_2_te_other_than_trailers(c):
    bad_request(c, BASE + [("te", "gzip")])


def test_8_2_2_te_trailers_is_allowed(c):
    c.send_raw(raw_frame(T_HEADERS, END_STREAM | END_HEADERS, 1, c.block(BASE + [("te", "trailers")])))
    expect_ok(c, 1)


def test_8_2_field_value_with_newline(c):
    bad_request(c, BASE + [("x-bad", "a\r\nb")])


def test_8_3_1_missing_method(c):
    bad_request(c, [h for h in BASE if h[0] != ":method"])


def test_8_3_1_missing_path(c):
    bad_request(c, [h for h in BASE if h[0] != ":path"])


def test_8_3_1_missing_scheme(c):
    bad_request(c, [h for h in BASE if h[0] != ":scheme"])


def test_8_3_1_empty_path(c):
    bad_request(c, [(":method", "GET"), (":scheme", "http"), (":path", ""), (":authority", "x")])


def test_8_3_duplicate_pseudo_header(c):
    bad_request(c, BASE + [(":method", "POST")])


def test_8_3_pseudo_header_after_regular(c):
    bad_request(c, [(":method", "GET"), (":scheme", "http"), ("x-a", "1"), (":path", "/"),
                    (":authority", "conf.test")])


def test_8_3_unknown_pseudo_header(c):
    bad_request(c, BASE + [(":weird", "1")])


def test_8_3_response_pseudo_header_in_request(c):
    bad_request(c, BASE + [(":status", "200")])


def test_8_1_1_content_length_above_data(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test", [("content-length", "10")]),
              end_stream=False)
    c.data(1, b"123", end_stream=True)
    expect_rst(c, 1, PROTOCOL_ERROR)


def test_8_1_1_content_length_below_data(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test", [("content-length", "2")]),
              end_stream=False)
    c.data(1, b"12345", end_stream=True)
    expect_rst(c, 1, PROTOCOL_ERROR)


def test_8_1_trailers_must_end_the_stream(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.data(1, b"x", end_stream=False)
    c.headers(1, [("x-trailer", "1")], end_stream=False)
    f = c.wait_for(lambda f: (isinstance(f, RstStreamFrame) and f.stream_id == 1) or
                   isinstance(f, GoAwayFrame))
    assert f is not None and f.error_code == PROTOCOL_ERROR


def test_8_1_request_trailers_accepted(c):
    c.headers(1, c.request_headers("/", "POST", "conf.test"), end_stream=False)
    c.data(1, b"x", end_stream=False)
    c.headers(1, [("x-trailer", "1")], end_stream=True)
    expect_ok(c, 1)


def test_8_5_connect_without_authority(c):
    bad_request(c, [(":method", "CONNECT")])


def test_8_head_response_has_no_body(c):
    c.headers(1, c.request_headers("/big", "HEAD", "conf.test"))
    status, headers, body, _ = expect_ok(c, 1)
    assert body == b"" and headers.get("content-length") == "200000"


def test_8_response_headers_are_lowercase_without_hop_by_hop(c):
    status, headers, body, _ = expect_ok(c, 1) if c.get(1, "/") is None else None
    assert all(k == k.lower() for k in headers)
    assert "connection" not in headers and "keep-alive" not in headers


def test_8_cookie_fields_are_joined_for_http1(c, server):
    _, o = server
    c.headers(1, c.request_headers("/cookie", extra=[("cookie", "a=1"), ("cookie", "b=2")]))
    expect_ok(c, 1)
    req = [r for r in o.requests if r.path == "/cookie"][-1]
    assert req.header_values("Cookie") == ["a=1; b=2"]


def test_8_authority_becomes_host(c, server):
    _, o = server
    c.get(1, "/authority", authority="conf.test")
    expect_ok(c, 1)
    req = [r for r in o.requests if r.path == "/authority"][-1]
    assert req.header("Host") == "conf.test"
