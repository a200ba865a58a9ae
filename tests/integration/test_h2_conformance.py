"""HTTP/2 conformance through weir, frame by frame (RFC 9113; HPACK: RFC 7541).

One case per requirement, named test_<section>_..., each asserting the exact
outcome: a GOAWAY with its error code followed by the close of the
connection (connection error, §5.4.1), a RST_STREAM with its code on its
stream (stream error, §5.4.2; a GOAWAY with the same code is accepted as
§5.4.1 allows), or a response with its status and body.

weir is started per test in front of the Python origin (h2target.py); with
H2_TARGET=h2o, H2_TARGET=nghttpd or H2_TARGET=host:port the same cases run
against that server instead (see h2target.py for the site it must serve).

Run:  WEIR_BIN=build/weir /usr/bin/python3 -m pytest -q -p no:cacheprovider \\
          tests/integration/test_h2_conformance.py
      H2_TARGET=nghttpd /usr/bin/python3 -m pytest ...   (reference run)
"""

import time

import pytest
from hpack import HPACKError
from hyperframe.frame import (DataFrame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame,
                              SettingsFrame)

from h2target import BIG, BIG_BODY, h2_target, t  # noqa: F401  (fixtures)
from h2util import (COMPRESSION_ERROR, DATA, F_ACK, F_END_HEADERS, F_END_STREAM,
                    F_PADDED, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, HEADERS, NO_ERROR,
                    PING, PREFACE, PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE, QUIET, REFUSED_STREAM,
                    RST_STREAM, S_ENABLE_PUSH, S_HEADER_TABLE_SIZE, S_INITIAL_WINDOW_SIZE,
                    S_MAX_CONCURRENT_STREAMS, S_MAX_FRAME_SIZE, SETTINGS, STREAM_CLOSED, WAIT,
                    WINDOW_UPDATE, block, describe, expect_alive, expect_closed,
                    expect_connection_error, expect_malformed, expect_no_frame,
                    expect_stream_error, frame_bytes, hpack_str, indexed, literal, read_response,
                    request_fields, settings_payload, table_size_update)

MAX_WINDOW = 2**31 - 1


@pytest.fixture
def c(t):
    with t.client() as conn:
        yield conn


def hello(c, sid):
    """A GET /hello on sid and its exact response."""
    c.get(sid, "/hello")
    r = read_response(c, sid)
    assert (r.status, r.body) == (200, b"hello\n"), r
    return r


def open_stream(c, sid, path="/echo"):
    """A POST whose body never ends: the stream stays open on both sides."""
    c.headers(sid, request_fields(path, "POST"), end_stream=False)


def origin_paths(t):
    return t.origin.paths() if t.origin else []


def bad_request(c, sid, fields):
    """Sends a request made of exactly these fields (path /bad) and expects
    it to be treated as malformed (§8.1.1)."""
    c.headers(sid, fields)
    return expect_malformed(c, sid)


def bad(extra=(), **kw):
    return request_fields("/bad", extra=extra, **kw)


def data_until(c, sid, total, timeout=WAIT):
    """Reads frames until `total` DATA bytes arrived on sid; returns the bytes."""
    got = b""
    end = time.monotonic() + timeout
    while len(got) < total:
        f = c.read_frame(max(0.0, end - time.monotonic()))
        assert f is not None, f"only {len(got)} of {total} bytes on stream {sid}; {c.describe()}"
        assert not isinstance(f, (GoAwayFrame, RstStreamFrame)), c.describe()
        if isinstance(f, DataFrame) and f.stream_id == sid:
            got += f.data
    assert len(got) == total, f"{len(got)} bytes on stream {sid}, window allowed {total}"
    return got


def no_data(c, sid, timeout=QUIET):
    expect_no_frame(c, lambda f: isinstance(f, DataFrame) and f.stream_id == sid and f.data,
                    timeout, f"DATA on stream {sid} beyond its flow-control window")


# -- §3.4 connection preface ---------------------------------------------------

def expect_preface_rejected(c):
    """§3.4: an invalid preface is a connection error PROTOCOL_ERROR; the
    GOAWAY MAY be omitted. So: at most the server's own SETTINGS, then
    GOAWAY PROTOCOL_ERROR or nothing, then the close."""
    frames = c.frames(WAIT)
    assert c.eof, f"connection kept open after an invalid preface; {c.describe()}"
    rest = [f for f in frames if not isinstance(f, SettingsFrame)]
    assert all(isinstance(f, GoAwayFrame) and f.error_code == PROTOCOL_ERROR for f in rest), \
        c.describe()


def test_3_4_server_preface_is_settings_and_acknowledges_ours(t):
    with t.client(handshake=False) as c:
        c.preface({S_MAX_CONCURRENT_STREAMS: 100})
        first = c.read_frame()
        assert isinstance(first, SettingsFrame) and "ACK" not in first.flags, c.describe()
        assert first.stream_id == 0
        ack = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
        assert ack is not None and ack.settings == {}, c.describe()
        hello(c, 1)


def test_3_4_invalid_preface_is_protocol_error(t):
    with t.client(handshake=False) as c:
        c.send_bytes(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame_bytes(SETTINGS, 0, 0))
        expect_preface_rejected(c)


def test_3_4_first_frame_not_settings_is_protocol_error(t):
    with t.client(handshake=False) as c:
        c.send_bytes(PREFACE + frame_bytes(PING, 0, 0, b"12345678"))
        expect_preface_rejected(c)


def test_3_4_headers_before_settings_is_protocol_error(t):
    with t.client(handshake=False) as c:
        c.send_bytes(PREFACE + frame_bytes(HEADERS, F_END_HEADERS | F_END_STREAM, 1,
                                           block(request_fields())))
        expect_preface_rejected(c)


# -- §4.1 frame format ---------------------------------------------------------

def test_4_1_unknown_flags_are_ignored(c):
    c.frame(PING, 0xFE, 0, b"flags?!!")          # every flag but ACK
    f = c.wait_for(lambda f: isinstance(f, (PingFrame, GoAwayFrame)))
    assert isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == b"flags?!!", \
        c.describe()
    c.headers(1, request_fields(), flags=0x02 | 0x10 | 0x40 | 0x80)
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")


def test_4_1_reserved_bit_of_stream_id_is_ignored(c):
    c.frame(HEADERS, F_END_HEADERS | F_END_STREAM, 1, block(request_fields()), reserved_bit=True)
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")


# -- §4.2 frame size -----------------------------------------------------------

def test_4_2_data_over_max_frame_size_is_frame_size_error(c):
    mfs = c.max_frame_size()
    if mfs + 1 > min(c.initial_window, c.conn_window):
        pytest.skip("SETTINGS_MAX_FRAME_SIZE above the flow-control window")
    open_stream(c, 1)
    c.data(1, b"x" * (mfs + 1))
    expect_stream_error(c, 1, FRAME_SIZE_ERROR)


def test_4_2_headers_over_max_frame_size_is_connection_frame_size_error(c):
    mfs = c.max_frame_size()
    c.headers(1, request_fields(extra=[("x-big", "a" * mfs)]))
    expect_connection_error(c, FRAME_SIZE_ERROR)


def test_4_2_data_of_exactly_max_frame_size_is_accepted(t, c):
    mfs = c.max_frame_size()
    open_stream(c, 1)
    c.data(1, b"y" * mfs)
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"y" * mfs)


# -- §4.3 field section compression ------------------------------------------

def test_4_3_field_block_split_over_continuations(t, c):
    raw = block(request_fields(extra=[("x-split", "one block")]))
    c.headers(1, raw=raw[:5], end_headers=False)
    c.continuation(1, raw[5:20], end_headers=False)
    c.continuation(1, raw[20:])
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")
    if t.origin:
        assert t.origin.last_request().header("x-split") == "one block"


def test_4_3_ping_inside_field_block_is_protocol_error(c):
    raw = block(request_fields())
    c.headers(1, raw=raw[:5], end_headers=False)
    c.ping()
    c.continuation(1, raw[5:])
    expect_connection_error(c, PROTOCOL_ERROR)


def test_4_3_headers_of_another_stream_inside_field_block_is_protocol_error(c):
    raw = block(request_fields())
    c.headers(1, raw=raw[:5], end_headers=False)
    c.headers(3, request_fields())
    expect_connection_error(c, PROTOCOL_ERROR)


def test_4_3_data_inside_field_block_is_protocol_error(c):
    open_stream(c, 1)
    raw = block(request_fields())
    c.headers(3, raw=raw[:5], end_headers=False)
    c.data(1, b"interleaved")
    expect_connection_error(c, PROTOCOL_ERROR)


def test_4_3_continuation_of_another_stream_is_protocol_error(c):
    raw = block(request_fields())
    c.headers(1, raw=raw[:5], end_headers=False)
    c.continuation(3, raw[5:])
    expect_connection_error(c, PROTOCOL_ERROR)


def test_4_3_field_block_of_a_reset_stream_still_updates_the_decoder(t, c):
    """The server decodes every field block, even one of a stream that is
    reset at once: the entry it added to the dynamic table is usable next."""
    c.headers(1, raw=block(request_fields("/slow")) + literal("x-state", "kept", indexing=True),
              end_stream=False)
    c.rst_stream(1)
    c.headers(3, raw=block(request_fields()) + indexed(62))
    r = read_response(c, 3)
    assert (r.status, r.body) == (200, b"hello\n")
    if t.origin:
        assert t.origin.wait_for_requests(1)
        hello_req = [q for q in t.origin.requests if q.path == "/hello"][-1]
        assert hello_req.header("x-state") == "kept"


# HPACK decoding errors are connection errors COMPRESSION_ERROR (§4.3).

def test_4_3_hpack_index_zero_is_compression_error(c):
    c.headers(1, raw=block(request_fields()) + indexed(0))
    expect_connection_error(c, COMPRESSION_ERROR)


def test_4_3_hpack_index_beyond_tables_is_compression_error(c):
    c.headers(1, raw=block(request_fields()) + indexed(200))
    expect_connection_error(c, COMPRESSION_ERROR)


def test_4_3_hpack_table_size_update_over_the_limit_is_compression_error(c):
    limit = c.server_settings.get(S_HEADER_TABLE_SIZE, 4096)
    c.headers(1, raw=table_size_update(limit + 1) + block(request_fields()))
    expect_connection_error(c, COMPRESSION_ERROR)


def test_4_3_hpack_table_size_update_after_a_field_is_compression_error(c):
    """RFC 7541 §4.2: a size update MUST come at the beginning of a block."""
    c.headers(1, raw=block(request_fields()) + table_size_update(0))
    expect_connection_error(c, COMPRESSION_ERROR)


def test_4_3_hpack_truncated_block_is_compression_error(c):
    c.headers(1, raw=block(request_fields()) + b"\x00\x05ab")
    expect_connection_error(c, COMPRESSION_ERROR)


def test_4_3_hpack_bad_huffman_padding_is_compression_error(c):
    """RFC 7541 §5.2: padding that is not the EOS prefix (all ones)."""
    c.headers(1, raw=block(request_fields()) + b"\x00" + hpack_str("x-h") + b"\x81\x00")
    expect_connection_error(c, COMPRESSION_ERROR)


# -- §5.1 stream states ----------------------------------------------------------

def test_5_1_data_on_idle_stream_is_protocol_error(c):
    c.data(1, b"idle")
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_1_rst_stream_on_idle_stream_is_protocol_error(c):
    c.rst_stream(1)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_1_window_update_on_idle_stream_is_protocol_error(c):
    c.window_update(1, 100)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_1_priority_on_idle_stream_is_allowed(c):
    c.priority(3, dependency=0, weight=200)
    hello(c, 1)
    hello(c, 3)


def test_5_1_data_on_half_closed_remote_stream_is_stream_closed(c):
    c.get(1, "/slow")
    c.data(1, b"late")
    expect_stream_error(c, 1, STREAM_CLOSED)


def test_5_1_headers_on_half_closed_remote_stream_is_stream_closed(c):
    c.get(1, "/slow")
    c.headers(1, [("x-late", "1")])
    expect_stream_error(c, 1, STREAM_CLOSED)


def test_5_1_data_on_closed_stream_is_stream_closed(c):
    hello(c, 1)
    c.data(1, b"late")
    expect_stream_error(c, 1, STREAM_CLOSED)


def test_5_1_headers_on_closed_stream_is_stream_closed(c):
    hello(c, 1)
    c.get(1)
    expect_stream_error(c, 1, STREAM_CLOSED)


def test_5_1_window_update_rst_and_priority_on_recently_closed_stream_are_tolerated(c):
    hello(c, 1)
    c.window_update(1, 1000)
    c.rst_stream(1, NO_ERROR)
    c.priority(1, dependency=0)
    expect_alive(c)
    hello(c, 3)


def test_5_1_client_reset_closes_only_that_stream(t, c):
    c.get(1, "/slow")
    c.rst_stream(1)
    hello(c, 3)
    expect_no_frame(c, lambda f: isinstance(f, (GoAwayFrame, RstStreamFrame)), QUIET,
                    "error after a client reset")


# -- §5.1.1 stream identifiers -------------------------------------------------

def test_5_1_1_even_stream_id_from_client_is_protocol_error(c):
    c.get(2)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_1_1_decreasing_stream_id_is_protocol_error(c):
    hello(c, 5)
    c.get(3)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_1_1_stream_ids_may_skip_numbers(c):
    hello(c, 1)
    hello(c, 11)
    hello(c, 101)


# -- §5.1.2 stream concurrency -------------------------------------------------

def test_5_1_2_exceeding_max_concurrent_streams_is_refused(c):
    """REFUSED_STREAM or PROTOCOL_ERROR on the extra stream (nghttp2 makes it
    a connection error PROTOCOL_ERROR, which §5.4.1 allows)."""
    limit = c.server_settings.get(S_MAX_CONCURRENT_STREAMS)
    if limit is None or limit > 1000:
        pytest.skip(f"SETTINGS_MAX_CONCURRENT_STREAMS is {limit}")
    for i in range(limit):
        open_stream(c, 1 + 2 * i)
    extra = 1 + 2 * limit
    open_stream(c, extra)
    f = c.wait_for(lambda f: isinstance(f, GoAwayFrame)
                   or (isinstance(f, RstStreamFrame) and f.stream_id == extra))
    assert f is not None, f"stream {extra} over the limit of {limit} accepted; {c.describe()}"
    assert f.error_code in (REFUSED_STREAM, PROTOCOL_ERROR), describe(f)
    if isinstance(f, GoAwayFrame):
        assert f.error_code == PROTOCOL_ERROR and f.last_stream_id == extra - 2, describe(f)
        expect_closed(c)
    else:
        c.data(1, b"still open")
        r = read_response(c, 1)
        assert (r.status, r.body) == (200, b"still open")


# -- §5.3 priority ---------------------------------------------------------------

def test_5_3_1_headers_depending_on_itself_is_protocol_error(c):
    c.headers(1, request_fields(), priority=(1, 16, False))
    expect_stream_error(c, 1, PROTOCOL_ERROR)


def test_5_3_1_priority_depending_on_itself_is_protocol_error(c):
    open_stream(c, 1)
    c.priority(1, dependency=1)
    expect_stream_error(c, 1, PROTOCOL_ERROR)


def test_5_3_headers_with_priority_are_answered(c):
    c.headers(1, request_fields(), priority=(0, 256, True))
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")


# -- §5.4 error handling ---------------------------------------------------------

def test_5_4_1_connection_error_before_any_stream_names_stream_0(c):
    c.frame(DATA, 0, 0, b"x")
    g = expect_connection_error(c, PROTOCOL_ERROR)
    assert g.last_stream_id == 0


def test_5_4_1_goaway_names_the_last_stream_processed(c):
    hello(c, 1)
    hello(c, 3)
    c.ping(sid=1)
    g = expect_connection_error(c, PROTOCOL_ERROR)
    assert g.last_stream_id == 3, describe(g)


# -- §5.5 extending HTTP/2 -----------------------------------------------------

def test_5_5_unknown_frame_types_are_ignored(c):
    c.frame(0xBB, 0xFF, 0, b"extension on stream 0")
    open_stream(c, 1)
    c.frame(0xBC, 0, 1, b"extension on an open stream")
    c.data(1, b"body")
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"body")
    expect_alive(c)


def test_5_5_unknown_frame_inside_field_block_is_protocol_error(c):
    raw = block(request_fields())
    c.headers(1, raw=raw[:5], end_headers=False)
    c.frame(0xBB, 0, 1, b"extension")
    c.continuation(1, raw[5:])
    expect_connection_error(c, PROTOCOL_ERROR)


def test_5_5_unknown_settings_are_ignored(c):
    c.settings({0x99: 1, 0xFF00: 7})
    ack = c.wait_for(lambda f: isinstance(f, GoAwayFrame)
                     or (isinstance(f, SettingsFrame) and "ACK" in f.flags))
    assert isinstance(ack, SettingsFrame), c.describe()
    hello(c, 1)


# -- §6.1 DATA -----------------------------------------------------------------

def test_6_1_data_on_stream_0_is_protocol_error(c):
    c.frame(DATA, 0, 0, b"zero")
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_1_padded_data_is_accepted(t, c):
    open_stream(c, 1)
    c.data(1, b"padded", end_stream=False, pad=10)
    c.data(1, b"", pad=0)
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"padded")
    if t.origin:
        assert t.origin.last_request().body == b"padded"


def test_6_1_data_padding_as_long_as_the_payload_is_protocol_error(c):
    open_stream(c, 1)
    c.frame(DATA, F_PADDED | F_END_STREAM, 1, bytes([4]) + b"abc")
    expect_connection_error(c, PROTOCOL_ERROR)


# -- §6.2 HEADERS --------------------------------------------------------------

def test_6_2_headers_on_stream_0_is_protocol_error(c):
    c.headers(0, request_fields())
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_2_padded_headers_with_priority_are_accepted(c):
    c.headers(1, request_fields(), pad=7, priority=(0, 32, False))
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")


def test_6_2_headers_padding_too_long_is_protocol_error(c):
    raw = block(request_fields())
    c.frame(HEADERS, F_PADDED | F_END_HEADERS | F_END_STREAM, 1, bytes([len(raw) + 1]) + raw)
    expect_connection_error(c, PROTOCOL_ERROR)


# -- §6.3 PRIORITY -------------------------------------------------------------

def test_6_3_priority_on_stream_0_is_protocol_error(c):
    c.priority(0, dependency=1)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_3_priority_of_wrong_length_is_frame_size_error(c):
    open_stream(c, 1)
    c.frame(PRIORITY, 0, 1, b"\0\0\0\0")
    expect_stream_error(c, 1, FRAME_SIZE_ERROR)


# -- §6.4 RST_STREAM -----------------------------------------------------------

def test_6_4_rst_stream_on_stream_0_is_protocol_error(c):
    c.rst_stream(0)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_4_rst_stream_of_wrong_length_is_frame_size_error(c):
    open_stream(c, 1)
    c.frame(RST_STREAM, 0, 1, b"\0\0\0")
    expect_connection_error(c, FRAME_SIZE_ERROR)


# -- §6.5 SETTINGS -------------------------------------------------------------

def test_6_5_settings_length_not_a_multiple_of_6_is_frame_size_error(c):
    c.frame(SETTINGS, 0, 0, settings_payload({S_MAX_CONCURRENT_STREAMS: 100}) + b"\0")
    expect_connection_error(c, FRAME_SIZE_ERROR)


def test_6_5_settings_ack_with_payload_is_frame_size_error(c):
    c.frame(SETTINGS, F_ACK, 0, settings_payload({S_MAX_CONCURRENT_STREAMS: 100}))
    expect_connection_error(c, FRAME_SIZE_ERROR)


def test_6_5_settings_on_a_stream_is_protocol_error(c):
    c.frame(SETTINGS, 0, 1, b"")
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_5_2_enable_push_other_than_0_or_1_is_protocol_error(c):
    c.settings({S_ENABLE_PUSH: 2})
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_5_2_initial_window_size_above_2_31_minus_1_is_flow_control_error(c):
    c.settings({S_INITIAL_WINDOW_SIZE: 2**31})
    expect_connection_error(c, FLOW_CONTROL_ERROR)


def test_6_5_2_max_frame_size_below_16384_is_protocol_error(c):
    c.settings({S_MAX_FRAME_SIZE: 16383})
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_5_2_max_frame_size_above_2_24_minus_1_is_protocol_error(c):
    c.settings({S_MAX_FRAME_SIZE: 2**24})
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_5_3_every_settings_frame_is_acknowledged(t):
    with t.client(handshake=False) as c:
        c.preface({S_MAX_CONCURRENT_STREAMS: 10})
        c.settings({S_INITIAL_WINDOW_SIZE: 70000})
        c.settings()
        c.settings({S_MAX_FRAME_SIZE: 20000})
        acks = 0
        while acks < 4:
            f = c.wait_for(lambda f: isinstance(f, (SettingsFrame, GoAwayFrame)))
            assert isinstance(f, SettingsFrame), f"{acks} ACKs for 4 SETTINGS; {c.describe()}"
            acks += "ACK" in f.flags
        expect_no_frame(c, lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags,
                        QUIET, "extra SETTINGS ACK")


def test_6_5_2_header_table_size_0_is_honoured_by_the_server_encoder(t):
    """RFC 7541 §4.2: after SETTINGS_HEADER_TABLE_SIZE 0 the server's next
    field block starts with a size update to 0 and adds no entries."""
    with t.client(handshake=False) as c:
        c.dec.max_allowed_table_size = 0
        c.handshake({S_HEADER_TABLE_SIZE: 0})
        for sid in (1, 3):
            c.get(sid, "/hello")
            try:
                r = read_response(c, sid)
            except HPACKError as e:
                pytest.fail(f"response field block on stream {sid}: {e!r}")
            assert (r.status, r.body) == (200, b"hello\n")
        assert c.dec.header_table_size == 0
        assert len(c.dec.header_table.dynamic_entries) == 0


# -- §6.6 PUSH_PROMISE ---------------------------------------------------------

def test_6_6_push_promise_from_a_client_is_protocol_error(c):
    open_stream(c, 1)
    c.frame(PUSH_PROMISE, F_END_HEADERS, 1, (2).to_bytes(4, "big") + block(request_fields()))
    expect_connection_error(c, PROTOCOL_ERROR)


# -- §6.7 PING -----------------------------------------------------------------

def test_6_7_ping_is_answered_with_an_ack_and_the_same_payload(c):
    c.ping(b"\x00\x01\x02\x03\xfc\xfd\xfe\xff")
    f = c.wait_for(lambda f: isinstance(f, (PingFrame, GoAwayFrame)))
    assert isinstance(f, PingFrame), c.describe()
    assert "ACK" in f.flags and f.stream_id == 0
    assert f.opaque_data == b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"


def test_6_7_ping_ack_is_not_answered(c):
    c.ping(b"unasked!", ack=True)
    c.ping(b"realping")
    pings = [f for f in c.frames(QUIET * 2) if isinstance(f, (PingFrame, GoAwayFrame))]
    assert [(type(f), f.opaque_data, "ACK" in f.flags) for f in pings] == \
        [(PingFrame, b"realping", True)], c.describe()


def test_6_7_ping_on_a_stream_is_protocol_error(c):
    c.ping(sid=1)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_7_ping_of_wrong_length_is_frame_size_error(c):
    c.ping(b"1234567")
    expect_connection_error(c, FRAME_SIZE_ERROR)


# -- §6.8 GOAWAY ---------------------------------------------------------------

def test_6_8_goaway_on_a_stream_is_protocol_error(c):
    c.goaway(0, NO_ERROR, sid=1)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_8_open_streams_are_answered_after_client_goaway(c):
    c.get(1, "/slow")
    c.goaway(0, NO_ERROR)
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"slow\n")


# -- §6.9 WINDOW_UPDATE --------------------------------------------------------

def test_6_9_window_update_of_0_on_a_stream_is_protocol_error(c):
    open_stream(c, 1)
    c.window_update(1, 0)
    expect_stream_error(c, 1, PROTOCOL_ERROR)


def test_6_9_window_update_of_0_on_the_connection_is_protocol_error(c):
    c.window_update(0, 0)
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_9_window_update_of_wrong_length_is_frame_size_error(c):
    c.frame(WINDOW_UPDATE, 0, 0, b"\0\0\1")
    expect_connection_error(c, FRAME_SIZE_ERROR)


def test_6_9_1_connection_window_overflow_is_flow_control_error(c):
    c.window_update(0, MAX_WINDOW)
    expect_connection_error(c, FLOW_CONTROL_ERROR)


def test_6_9_1_stream_window_overflow_is_flow_control_error(c):
    open_stream(c, 1)
    c.window_update(1, MAX_WINDOW)
    expect_stream_error(c, 1, FLOW_CONTROL_ERROR)


def test_6_9_2_initial_window_change_overflowing_a_stream_is_flow_control_error(c):
    open_stream(c, 1)
    c.window_update(1, MAX_WINDOW - 65535)
    c.settings({S_INITIAL_WINDOW_SIZE: 65536})
    expect_connection_error(c, FLOW_CONTROL_ERROR)


# -- §5.2 / §6.9 flow control behaviour ---------------------------------------

def test_6_9_1_zero_initial_window_holds_data_until_window_update(t):
    with t.client({S_INITIAL_WINDOW_SIZE: 0}) as c:
        c.window_update(0, 1 << 20)
        c.get(1, "/big")
        h = c.wait_for(lambda f: isinstance(f, (HeadersFrame, GoAwayFrame, RstStreamFrame)))
        assert isinstance(h, HeadersFrame) and h.stream_id == 1, c.describe()
        no_data(c, 1)
        c.window_update(1, 1000)
        got = data_until(c, 1, 1000)
        no_data(c, 1)
        c.window_update(1, BIG)
        got += data_until(c, 1, BIG - 1000)
        assert got == BIG_BODY


def test_6_9_1_small_stream_window_is_respected(t):
    with t.client({S_INITIAL_WINDOW_SIZE: 1000}) as c:
        c.window_update(0, 1 << 20)
        c.get(1, "/big")
        got = data_until(c, 1, 1000)
        no_data(c, 1)
        c.window_update(1, 5000)
        got += data_until(c, 1, 5000)
        no_data(c, 1)
        assert got == BIG_BODY[:6000]


def test_6_9_1_connection_window_is_respected(t):
    with t.client({S_INITIAL_WINDOW_SIZE: 1 << 20}) as c:
        c.get(1, "/big")
        got = data_until(c, 1, 65535)
        no_data(c, 1)
        c.window_update(0, BIG)
        got += data_until(c, 1, BIG - 65535)
        assert got == BIG_BODY


def test_6_9_2_settings_change_can_make_a_window_negative(t):
    """§6.9.2: the window is 16384 - 16384 - 16384 after SETTINGS lower it to
    0; the server must wait until WINDOW_UPDATEs bring it above 0."""
    with t.client({S_INITIAL_WINDOW_SIZE: 16384}) as c:
        c.window_update(0, 1 << 20)
        c.get(1, "/big")
        got = data_until(c, 1, 16384)
        no_data(c, 1)
        c.settings({S_INITIAL_WINDOW_SIZE: 0})
        ack = c.wait_for(lambda f: isinstance(f, SettingsFrame) and "ACK" in f.flags)
        assert ack is not None, c.describe()
        c.window_update(1, 16384)
        no_data(c, 1)
        c.window_update(1, 100)
        got += data_until(c, 1, 100)
        no_data(c, 1)
        assert got == BIG_BODY[:16484]


def test_6_9_large_body_arrives_in_many_data_frames(t, c):
    c.get(1, "/big")
    r = read_response(c, 1)
    assert r.status == 200 and r.body == BIG_BODY
    assert len(r.data_frames) >= BIG // 16384
    assert max(r.data_frames) <= 16384   # §4.2: our SETTINGS_MAX_FRAME_SIZE (default)


def test_6_9_large_upload_follows_the_server_windows(t, c):
    body = BIG_BODY[:200_000]
    open_stream(c, 1)
    assert c.send_body(1, body)
    r = read_response(c, 1)
    assert r.status == 200 and r.body == body


# -- §6.10 CONTINUATION --------------------------------------------------------

def test_6_10_continuation_without_headers_is_protocol_error(c):
    c.continuation(1, block(request_fields()))
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_10_continuation_after_end_headers_is_protocol_error(c):
    c.headers(1, request_fields(), end_stream=False)
    c.continuation(1, literal("x-more", "1"))
    expect_connection_error(c, PROTOCOL_ERROR)


def test_6_10_continuation_on_stream_0_is_protocol_error(c):
    raw = block(request_fields())
    c.headers(1, raw=raw[:5], end_headers=False)
    c.continuation(0, raw[5:])
    expect_connection_error(c, PROTOCOL_ERROR)


# -- §7 error codes --------------------------------------------------------------

def test_7_unknown_error_code_in_rst_stream_is_not_special(c):
    open_stream(c, 1)
    c.rst_stream(1, 0xABCD)
    hello(c, 3)
    expect_alive(c)


# -- §8.1 HTTP message framing ---------------------------------------------------

def test_8_1_get_is_answered(t, c):
    r = hello(c, 1)
    if r.header("content-length") is not None:
        assert r.header("content-length") == "6"
    if t.origin:
        assert t.origin.last_request().method == "GET"


def test_8_1_head_response_has_no_content(c):
    c.get(1, "/hello", method="HEAD")
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"")


def test_8_1_request_body_over_several_data_frames(t, c):
    open_stream(c, 1)
    c.data(1, b"abc", end_stream=False)
    c.data(1, b"def", end_stream=False)
    c.data(1, b"")
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"abcdef")
    if t.origin:
        assert t.origin.last_request().body == b"abcdef"


def test_8_1_request_trailers_pass_through(t, c):
    open_stream(c, 1)
    c.data(1, b"abc", end_stream=False)
    c.headers(1, [("x-req-trailer", "yes")])
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"abc")
    if t.is_weir:
        assert ("x-req-trailer", "yes") in [(k.lower(), v) for k, v in
                                            t.origin.last_request().trailers]


def test_8_1_response_trailers_pass_through(t, c):
    if t.kind == "h2o":
        pytest.skip("h2o 2.2.5 drops the trailers of HTTP/1.1 upstreams (no RFC MUST)")
    c.get(1, "/trailers")
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"trailers\n")
    assert ("x-trailer", "yes") in r.trailers


def test_8_1_trailers_without_end_stream_are_malformed(t, c):
    open_stream(c, 1, "/bad")
    c.data(1, b"abc", end_stream=False)
    c.headers(1, [("x-req-trailer", "yes")], end_stream=False)
    expect_malformed(c, 1)


def test_8_1_trailers_with_a_pseudo_field_are_malformed(c):
    open_stream(c, 1, "/bad")
    c.data(1, b"abc", end_stream=False)
    c.headers(1, [(":path", "/other")])
    expect_malformed(c, 1)


def test_8_1_1_content_length_below_the_data_is_malformed(t, c):
    c.headers(1, request_fields("/echo", "POST", extra=[("content-length", "3")]),
              end_stream=False)
    c.data(1, b"abcdef")
    expect_malformed(c, 1)
    assert set(origin_paths(t)) <= {"/echo"}
    assert all(q.body != b"abcdef" for q in (t.origin.requests if t.origin else []))


def test_8_1_1_content_length_above_the_data_is_malformed(t, c):
    c.headers(1, request_fields("/echo", "POST", extra=[("content-length", "10")]),
              end_stream=False)
    c.data(1, b"abc")
    expect_malformed(c, 1)
    assert not any(q.body_len == 10 for q in (t.origin.requests if t.origin else []))


# -- §8.2 HTTP fields ----------------------------------------------------------

def test_8_2_1_uppercase_field_name_is_malformed(t, c):
    bad_request(c, 1, bad([("X-Upper", "1")]))
    assert "/bad" not in origin_paths(t)


def test_8_2_1_field_name_with_space_is_malformed(t, c):
    bad_request(c, 1, bad([("x bad", "1")]))
    assert "/bad" not in origin_paths(t)


def test_8_2_1_field_name_with_colon_is_malformed(t, c):
    bad_request(c, 1, bad([("x:bad", "1")]))
    assert "/bad" not in origin_paths(t)


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\0b"], ids=["CR", "LF", "NUL"])
def test_8_2_1_field_value_with_cr_lf_or_nul_is_malformed(t, c, value):
    bad_request(c, 1, bad([("x-bad", value)]))
    assert "/bad" not in origin_paths(t)


@pytest.mark.parametrize("value", [" lead", "trail\t"], ids=["leading", "trailing"])
def test_8_2_1_field_value_with_surrounding_whitespace_is_malformed(t, c, value):
    bad_request(c, 1, bad([("x-bad", value)]))
    assert "/bad" not in origin_paths(t)


@pytest.mark.parametrize("name,value", [("connection", "keep-alive"),
                                        ("keep-alive", "timeout=5"),
                                        ("proxy-connection", "keep-alive"),
                                        ("transfer-encoding", "chunked"),
                                        ("upgrade", "h2c")])
def test_8_2_2_connection_specific_field_is_malformed(t, c, name, value):
    bad_request(c, 1, bad([(name, value)]))
    assert "/bad" not in origin_paths(t)


def test_8_2_2_te_other_than_trailers_is_malformed(t, c):
    bad_request(c, 1, bad([("te", "gzip")]))
    assert "/bad" not in origin_paths(t)


def test_8_2_2_te_trailers_is_allowed(c):
    c.get(1, "/hello", extra=[("te", "trailers")])
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")


def test_8_2_2_connection_specific_response_fields_are_not_relayed(c):
    c.get(1, "/hop")
    r = read_response(c, 1)          # checks every response for them
    assert (r.status, r.body) == (200, b"hop\n")
    assert r.header("keep-alive") is None and r.header("connection") is None


def test_8_2_3_cookie_crumbs_are_joined_for_http_1_1(t, c):
    c.get(1, "/hello", extra=[("cookie", "a=1"), ("cookie", "b=2")])
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")
    if t.origin:
        assert t.origin.last_request().header_values("Cookie") == ["a=1; b=2"]


# -- §8.3 pseudo-header fields -------------------------------------------------

def test_8_3_unknown_pseudo_field_is_malformed(t, c):
    bad_request(c, 1, bad([(":foo", "bar")]))
    assert "/bad" not in origin_paths(t)


def test_8_3_response_pseudo_field_in_request_is_malformed(t, c):
    bad_request(c, 1, bad([(":status", "200")]))
    assert "/bad" not in origin_paths(t)


def test_8_3_pseudo_field_after_regular_field_is_malformed(t, c):
    f = bad()
    bad_request(c, 1, f[:2] + [("x-regular", "1")] + f[2:])
    assert "/bad" not in origin_paths(t)


@pytest.mark.parametrize("name", [":method", ":scheme", ":path", ":authority"])
def test_8_3_1_duplicate_pseudo_field_is_malformed(t, c, name):
    f = bad()
    bad_request(c, 1, f + [(name, dict(f)[name])])
    assert "/bad" not in origin_paths(t)


@pytest.mark.parametrize("name", [":method", ":scheme", ":path"])
def test_8_3_1_missing_pseudo_field_is_malformed(t, c, name):
    bad_request(c, 1, [(k, v) for k, v in bad() if k != name])
    assert "/bad" not in origin_paths(t)


def test_8_3_1_empty_path_is_malformed(t, c):
    bad_request(c, 1, request_fields(""))
    assert origin_paths(t) == []


def test_8_3_1_authority_becomes_the_host_field(t, c):
    c.get(1, "/hello")
    r = read_response(c, 1)
    assert (r.status, r.body) == (200, b"hello\n")
    if t.origin:
        assert t.origin.last_request().header_values("Host") == ["h2.test"]


# -- §8.5 CONNECT --------------------------------------------------------------

def test_8_5_connect_without_authority_is_malformed(t, c):
    bad_request(c, 1, [(":method", "CONNECT")])
    assert origin_paths(t) == []


def test_8_5_connect_with_scheme_and_path_is_malformed(t, c):
    bad_request(c, 1, [(":method", "CONNECT"), (":authority", "h2.test:443"),
                       (":scheme", "https"), (":path", "/bad")])
    assert origin_paths(t) == []

