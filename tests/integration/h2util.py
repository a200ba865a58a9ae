"""Frame-level HTTP/2 client helpers for the conformance and abuse tests:
raw frames with hyperframe, header blocks with hpack, reads bounded by a
timeout."""

import socket
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM = 4, 5, 6, 7
CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, ENHANCE_YOUR_CALM = 8, 9, 10, 11


class H2:
    """One raw HTTP/2 connection (prior knowledge) to 127.0.0.1:port."""

    def __init__(self, port, timeout=5.0, settings=None, preface=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.server_settings = {}
        self.closed = False
        if preface:
            self.send_raw(PREFACE)
            f = SettingsFrame(0)
            for k, v in (settings or {}).items():
                f.settings[k] = v
            self.send(f)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def send(self, *frames):
        self.send_raw(b"".join(f.serialize() for f in frames))

    def block(self, headers):
        return self.enc.encode(headers)

    def request_headers(self, path="/", method="GET", authority="localhost", extra=()):
        return [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", authority), *extra]

    def headers(self, sid, headers, end_stream=True, end_headers=True):
        f = HeadersFrame(sid)
        f.data = self.block(headers)
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        self.send(f)

    def get(self, sid, path="/", **kw):
        self.headers(sid, self.request_headers(path, **kw))

    def data(self, sid, payload, end_stream=True):
        f = DataFrame(sid)
        f.data = payload
        if end_stream:
            f.flags.add("END_STREAM")
        self.send(f)

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                self.closed = True
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout=None):
        """The next frame, None at EOF or timeout. SETTINGS are acknowledged."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            head = self._read_exact(9, deadline)
            f, length = Frame.parse_frame_header(head)
            f.parse_body(memoryview(self._read_exact(length, deadline)))
        except (EOFError, TimeoutError, OSError):
            return None
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.server_settings.update(f.settings)
            ack = SettingsFrame(0)
            ack.flags.add("ACK")
            self.send(ack)
        if isinstance(f, HeadersFrame):
            f.decoded = self.dec.decode(f.data)
        return f

    def frames(self, timeout=None):
        """Frames until EOF or timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            f = self.read_frame(left)
            if f is None:
                return out
            out.append(f)

    def wait_for(self, pred, timeout=None):
        """Reads until a frame satisfies pred; returns it (None on EOF/timeout)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.read_frame(left)
            if f is None:
                return None
            if pred(f):
                return f

    def goaway(self, timeout=None):
        return self.wait_for(lambda f: isinstance(f, GoAwayFrame), timeout)

    def rst(self, sid, timeout=None):
        return self.wait_for(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == sid, timeout)

    def response(self, sid, timeout=None):
        """(status, headers dict, body, trailers) of stream sid; None if it was reset."""
        deadline = time.monotonic() + (timeout or self.timeout)
        status, headers, body, trailers = None, {}, b"", {}
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return None
            if f.stream_id != sid:
                if isinstance(f, DataFrame) and f.flow_controlled_length:
                    self.window_update(0, f.flow_controlled_length)
                continue
            if isinstance(f, RstStreamFrame):
                return None
            if isinstance(f, HeadersFrame):
                h = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                     for k, v in f.decoded}
                if status is None:
                    status, headers = int(h[":status"]), h
                else:
                    trailers = h
            elif isinstance(f, DataFrame):
                body += f.data
                if f.flow_controlled_length:
                    self.window_update(0, f.flow_controlled_length)
                    self.window_update(sid, f.flow_controlled_length)
            if "END_STREAM" in f.flags:
                return status, headers, body, trailers

    def window_update(self, sid, n):
        f = WindowUpdateFrame(sid)
        f.window_increment = n
        self.send(f)

    def ping(self, payload=b"12345678", ack=False):
        f = PingFrame(0)
        f.opaque_data = payload
        if ack:
            f.flags.add("ACK")
        self.send(f)

    def rst_stream(self, sid, code=CANCEL):
        f = RstStreamFrame(sid)
        f.error_code = code
        self.send(f)

    def is_closed(self, timeout=2.0):
        """True when the server closes the connection within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.read_frame(deadline - time.monotonic()) is None:
                return self.closed
        return False


def raw_frame(ftype, flags, sid, payload):
    """Bytes of an arbitrary frame (for malformed cases)."""
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) +
            (sid & 0x7FFFFFFF).to_bytes(4, "big") + payload)


# ---------------------------------------------------------------------------
# Frame-level client for test_h2_conformance.py and test_h2_abuse.py.
#
# Everything the client sends is built byte by byte (frame_bytes, and header
# blocks of HPACK literals), so a test can send exactly the malformed thing it
# is about; what the server sends is parsed with hyperframe and decoded with
# hpack. Every read is bounded by a timeout. The expect_* functions state the
# outcome a case asserts and fail with the frames seen so far.

import os as _os

from hyperframe.frame import ExtensionFrame, PushPromiseFrame

_SLOW = 3.0 if _os.environ.get("WEIR_SANITIZED") == "1" else 1.0
WAIT = 3.0 * _SLOW        # how long an expected frame may take
QUIET = 0.5 * _SLOW       # how long "nothing arrives" is watched for

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
F_END_STREAM = F_ACK = 0x1
F_END_HEADERS, F_PADDED, F_PRIORITY = 0x4, 0x8, 0x20

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS = 1, 2, 3
S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = 4, 5, 6

ERROR_NAMES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
               4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR",
               7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
               11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}

CONNECTION_SPECIFIC = ("connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade")


def err_name(code):
    return ERROR_NAMES.get(code, f"0x{code:x}")


def frame_bytes(ftype, flags, sid, payload=b"", reserved_bit=False):
    """One frame exactly as given (any type, flags, stream, payload)."""
    sid = (sid & 0x7FFFFFFF) | (0x80000000 if reserved_bit else 0)
    return (len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big")
            + payload)


def settings_payload(settings):
    return b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in dict(settings).items())


# -- HPACK (RFC 7541) by hand: integers, strings, representations -----------

def hpack_int(value, prefix_bits, first=0):
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out = bytearray([first | top])
    value -= top
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    b = s.encode("latin-1") if isinstance(s, str) else s
    return hpack_int(len(b), 7) + b


def literal(name, value, indexing=False):
    """A literal field (new name, no Huffman); with indexing=True it is also
    added to the dynamic table (index 62 for the newest entry)."""
    return (b"\x40" if indexing else b"\x00") + hpack_str(name) + hpack_str(value)


def indexed(index):
    return hpack_int(index, 7, 0x80)


def table_size_update(size):
    return hpack_int(size, 5, 0x20)


def block(fields):
    """A header block of literals, no dynamic table, no Huffman: the bytes on
    the wire are exactly the names and values given (case, spaces, NULs...)."""
    return b"".join(literal(n, v) for n, v in fields)


def request_fields(path="/hello", method="GET", authority="h2.test", scheme="http", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path), *extra]


class H2Response:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []      # (name, value) of the final response, pseudo-fields included
        self.body = b""
        self.trailers = []
        self.data_frames = []  # payload length of every DATA frame

    def header(self, name):
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return f"<H2Response stream={self.sid} {self.status} body={self.body[:80]!r}>"


class Client:
    """One HTTP/2 connection with prior knowledge, frame by frame.

    read_frame() returns the next frame (None on timeout or EOF; self.eof
    tells which). The server's SETTINGS are acknowledged as they arrive
    (auto_ack) and remembered in server_settings; a HEADERS frame and its
    CONTINUATIONs come back as one HeadersFrame whose .fields holds the
    decoded (name, value) list."""

    def __init__(self, host, port, timeout=WAIT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.dec = hpack.Decoder()
        self.server_settings = {}
        self.auto_ack = True
        self.eof = False
        self.send_failed = False
        self.seen = []         # short descriptions of every frame read (for failure messages)
        self.pending = []      # frames read ahead (send_body), handed out first
        # the server's flow-control windows for what we send (RFC 9113 §6.9)
        self.initial_window = 65535
        self.conn_window = 65535
        self.stream_windows = {}

    # -- connection ------------------------------------------------------
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def preface(self, settings=()):
        """Client connection preface: the magic, then our SETTINGS."""
        self.send_bytes(PREFACE + frame_bytes(SETTINGS, 0, 0, settings_payload(settings)))

    def handshake(self, settings=()):
        """Preface, then the server's SETTINGS, which must be its first frame
        (RFC 9113 §3.4). Returns the server's SETTINGS frame."""
        self.preface(settings)
        f = self.read_frame(WAIT)
        assert isinstance(f, SettingsFrame) and "ACK" not in f.flags, \
            f"server's first frame is not SETTINGS: {self.describe()}"
        return f

    # -- sending -----------------------------------------------------------
    def send_bytes(self, data):
        """Sends data; False (and send_failed) when the peer has gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.send_failed = True
            return False

    def frame(self, ftype, flags, sid, payload=b"", reserved_bit=False):
        return self.send_bytes(frame_bytes(ftype, flags, sid, payload, reserved_bit))

    def headers(self, sid, fields=None, end_stream=True, end_headers=True, raw=None, flags=0,
                pad=None, priority=None):
        """HEADERS on sid with `fields` (literals) or the `raw` block bytes.
        pad: padding length (PADDED); priority: (dependency, weight, exclusive)."""
        payload = raw if raw is not None else block(fields if fields is not None
                                                     else request_fields())
        if priority is not None:
            dep, weight, excl = priority
            payload = ((dep | (0x80000000 if excl else 0)).to_bytes(4, "big")
                       + bytes([weight - 1]) + payload)
            flags |= F_PRIORITY
        if pad is not None:
            payload = bytes([pad]) + payload + b"\0" * pad
            flags |= F_PADDED
        flags |= (F_END_STREAM if end_stream else 0) | (F_END_HEADERS if end_headers else 0)
        return self.frame(HEADERS, flags, sid, payload)

    def get(self, sid, path="/hello", extra=(), end_stream=True, method="GET"):
        return self.headers(sid, request_fields(path, method, extra=extra), end_stream=end_stream)

    def continuation(self, sid, raw, end_headers=True):
        return self.frame(CONTINUATION, F_END_HEADERS if end_headers else 0, sid, raw)

    def data(self, sid, payload, end_stream=True, pad=None):
        flags = F_END_STREAM if end_stream else 0
        used = len(payload) + (pad + 1 if pad is not None else 0)
        self.conn_window -= used
        self.stream_windows[sid] = self.stream_windows.get(sid, self.initial_window) - used
        if pad is not None:
            payload = bytes([pad]) + payload + b"\0" * pad
            flags |= F_PADDED
        return self.frame(DATA, flags, sid, payload)

    def settings(self, settings=(), ack=False):
        return self.frame(SETTINGS, F_ACK if ack else 0, 0, settings_payload(settings))

    def ping(self, payload=b"pingpong", ack=False, sid=0):
        return self.frame(PING, F_ACK if ack else 0, sid, payload)

    def rst_stream(self, sid, code=CANCEL):
        return self.frame(RST_STREAM, 0, sid, code.to_bytes(4, "big"))

    def window_update(self, sid, increment):
        return self.frame(WINDOW_UPDATE, 0, sid, increment.to_bytes(4, "big"))

    def priority(self, sid, dependency=0, weight=16, exclusive=False):
        return self.frame(PRIORITY, 0, sid, (dependency | (0x80000000 if exclusive else 0))
                          .to_bytes(4, "big") + bytes([weight - 1]))

    def goaway(self, last_stream_id=0, code=NO_ERROR, sid=0):
        return self.frame(GOAWAY, 0, sid, last_stream_id.to_bytes(4, "big")
                          + code.to_bytes(4, "big"))

    # -- receiving ---------------------------------------------------------
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(1 << 16)
        except socket.timeout:
            raise TimeoutError from None
        except OSError:      # connection reset counts as the end
            d = b""
        if not d:
            self.eof = True
            raise EOFError
        self.buf += d

    def _read(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _read_one(self, deadline):
        head = self._read(9, deadline)
        if head[:5] == b"HTTP/":
            raise AssertionError(f"the server answered in HTTP/1: {head + bytes(self.buf)!r}")
        f, length = Frame.parse_frame_header(memoryview(head))
        f.parse_body(memoryview(self._read(length, deadline)))
        return f

    def read_frame(self, timeout=WAIT):
        """The next frame, or None on timeout or EOF (then self.eof is True)."""
        if self.pending:
            return self.pending.pop(0)
        return self._next_frame(timeout)

    def _next_frame(self, timeout):
        if self.eof:
            return None
        deadline = time.monotonic() + timeout
        try:
            f = self._read_one(deadline)
            if isinstance(f, (HeadersFrame, PushPromiseFrame)):
                fragment = f.data
                end = "END_HEADERS" in f.flags
                while not end:
                    c = self._read_one(deadline)
                    assert isinstance(c, ContinuationFrame) and c.stream_id == f.stream_id, \
                        f"server interleaved {c!r} in a field block"
                    fragment += c.data
                    end = "END_HEADERS" in c.flags
                f.block = fragment
                f.fields = [(k, v) for k, v in self.dec.decode(fragment)]
        except (TimeoutError, EOFError):
            return None
        self.seen.append(describe(f))
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.server_settings.update(f.settings)
            if SettingsFrame.INITIAL_WINDOW_SIZE in f.settings:
                delta = f.settings[SettingsFrame.INITIAL_WINDOW_SIZE] - self.initial_window
                self.initial_window += delta
                for k in self.stream_windows:
                    self.stream_windows[k] += delta
            if self.auto_ack:
                self.settings(ack=True)
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            else:
                self.stream_windows[f.stream_id] = (self.stream_windows.get(
                    f.stream_id, self.initial_window) + f.window_increment)
        return f

    def send_body(self, sid, body, end_stream=True, timeout=WAIT * 3):
        """Sends body on sid in DATA frames that respect the server's frame
        size and flow-control windows, waiting for its WINDOW_UPDATEs (other
        frames read meanwhile are kept for read_frame)."""
        deadline = time.monotonic() + timeout
        off = 0
        while True:
            room = min(self.max_frame_size(), self.conn_window,
                       self.stream_windows.get(sid, self.initial_window), len(body) - off)
            if room > 0 or off == len(body):
                last = off + room == len(body)
                if not self.data(sid, body[off:off + room], end_stream=end_stream and last):
                    return False
                off += room
                if last:
                    return True
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"no WINDOW_UPDATE for stream {sid} after {off} bytes; {self.describe()}"
            f = self._next_frame(left)
            assert f is not None, f"no WINDOW_UPDATE for stream {sid} after {off} bytes; {self.describe()}"
            if not isinstance(f, (WindowUpdateFrame, SettingsFrame)):
                self.pending.append(f)

    def wait_for(self, pred, timeout=WAIT):
        """Reads until a frame satisfies pred and returns it; None on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            f = self.read_frame(left)
            if f is None:
                return None
            if pred(f):
                return f

    def frames(self, timeout=QUIET):
        """Every frame that arrives within timeout (stops early at EOF)."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            f = self.read_frame(left)
            if f is None:
                return out
            out.append(f)

    def describe(self):
        return "frames seen: [" + ", ".join(self.seen[-20:]) + "]" + (" then EOF" if self.eof else "")

    def max_frame_size(self):
        return self.server_settings.get(S_MAX_FRAME_SIZE, 16384)


def describe(f):
    name = type(f).__name__.replace("Frame", "")
    extra = ""
    if isinstance(f, GoAwayFrame):
        extra = f" last={f.last_stream_id} {err_name(f.error_code)} {f.additional_data[:60]!r}"
    elif isinstance(f, RstStreamFrame):
        extra = f" {err_name(f.error_code)}"
    elif isinstance(f, HeadersFrame):
        extra = f" {dict(getattr(f, 'fields', [])).get(':status', '')}"
    elif isinstance(f, DataFrame):
        extra = f" len={len(f.data)}"
    elif isinstance(f, WindowUpdateFrame):
        extra = f" +{f.window_increment}"
    elif isinstance(f, ExtensionFrame):
        extra = f" type={f.type}"
    flags = ",".join(sorted(f.flags))
    return f"{name}[{f.stream_id}]{extra}{' ' + flags if flags else ''}"


# -- outcomes ---------------------------------------------------------------

def expect_goaway(c, code, timeout=WAIT):
    """The next GOAWAY (other frames are skipped) has error code `code`."""
    g = c.wait_for(lambda f: isinstance(f, GoAwayFrame), timeout)
    assert g is not None, f"expected GOAWAY {err_name(code)}; {c.describe()}"
    assert g.error_code == code, \
        f"GOAWAY {err_name(g.error_code)}, expected {err_name(code)}; {c.describe()}"
    return g


def expect_closed(c, timeout=WAIT):
    """The server closes the connection within timeout (frames before EOF are skipped)."""
    deadline = time.monotonic() + timeout
    while not c.eof and time.monotonic() < deadline:
        c.read_frame(deadline - time.monotonic())
    assert c.eof, f"connection still open after {timeout:.1f} s; {c.describe()}"


def expect_connection_error(c, code, timeout=WAIT):
    """RFC 9113 §5.4.1: GOAWAY with `code`, then the TCP connection is closed."""
    g = expect_goaway(c, code, timeout)
    expect_closed(c, timeout)
    return g


def expect_stream_error(c, sid, code, timeout=WAIT):
    """RFC 9113 §5.4.2: RST_STREAM with `code` on stream sid; per §5.4.1 an
    endpoint MAY treat a stream error as a connection error, so a GOAWAY
    with the same code (then close) is accepted too. Returns the frame."""
    f = c.wait_for(lambda f: isinstance(f, GoAwayFrame)
                   or (isinstance(f, RstStreamFrame) and f.stream_id == sid), timeout)
    assert f is not None, f"expected RST_STREAM {err_name(code)} on stream {sid}; {c.describe()}"
    assert f.error_code == code, \
        f"{describe(f)}, expected {err_name(code)} on stream {sid}; {c.describe()}"
    if isinstance(f, GoAwayFrame):
        expect_closed(c, timeout)
    return f


def expect_malformed(c, sid, timeout=WAIT):
    """RFC 9113 §8.1.1: a malformed request is a stream error PROTOCOL_ERROR;
    the server MAY first send an HTTP response (§8.2.1: SHOULD be 400). So:
    RST_STREAM PROTOCOL_ERROR on sid, or GOAWAY PROTOCOL_ERROR, or a 400
    response on sid (optionally followed by the RST_STREAM)."""
    f = c.wait_for(lambda f: isinstance(f, GoAwayFrame) or (
        f.stream_id == sid and isinstance(f, (RstStreamFrame, HeadersFrame))), timeout)
    assert f is not None, f"expected RST_STREAM PROTOCOL_ERROR on stream {sid}; {c.describe()}"
    if isinstance(f, HeadersFrame):
        status = dict(f.fields).get(":status")
        assert status == "400", f"malformed request answered with {status}; {c.describe()}"
        return f
    assert f.error_code == PROTOCOL_ERROR, \
        f"{describe(f)}, expected PROTOCOL_ERROR on stream {sid}; {c.describe()}"
    if isinstance(f, GoAwayFrame):
        expect_closed(c, timeout)
    return f


def expect_alive(c, payload=b"alive?!!", timeout=WAIT):
    """The connection still works: a PING is answered with its payload."""
    c.ping(payload)
    f = c.wait_for(lambda f: isinstance(f, GoAwayFrame)
                   or (isinstance(f, PingFrame) and "ACK" in f.flags), timeout)
    assert isinstance(f, PingFrame) and f.opaque_data == payload, \
        f"connection not usable any more; {c.describe()}"


def expect_no_frame(c, pred, timeout=QUIET, what="frame"):
    """Nothing satisfying pred arrives within timeout (the frames read are
    consumed)."""
    got = [f for f in c.frames(timeout) if pred(f)]
    assert not got, f"unexpected {what}: {[describe(f) for f in got]}; {c.describe()}"


def check_response_fields(fields):
    """RFC 9113 §8.3 / §8.2: pseudo-fields first, :status three digits,
    names in lowercase, no connection-specific fields."""
    seen_regular = False
    for name, value in fields:
        if name.startswith(":"):
            assert not seen_regular, f"pseudo-field {name} after a regular field: {fields}"
            assert name == ":status", f"response pseudo-field {name}: {fields}"
        else:
            seen_regular = True
            assert name == name.lower(), f"uppercase field name {name!r}"
            assert name not in CONNECTION_SPECIFIC, f"connection-specific field {name!r}"
            if name == "te":
                assert value == "trailers", f"te: {value!r}"
    status = dict(fields).get(":status", "")
    assert len(status) == 3 and status.isdigit(), f"bad :status {status!r}"


def read_response(c, sid, timeout=WAIT * 3, update_windows=True):
    """Reads stream sid to its END_STREAM and returns an H2Response. DATA is
    acknowledged with WINDOW_UPDATEs (stream and connection) unless
    update_windows is False. Fails on RST_STREAM, GOAWAY or EOF."""
    r = H2Response(sid)
    deadline = time.monotonic() + timeout
    while True:
        f = c.read_frame(max(0.0, deadline - time.monotonic()))
        assert f is not None, f"no complete response on stream {sid} ({r!r}); {c.describe()}"
        if isinstance(f, GoAwayFrame):
            raise AssertionError(f"GOAWAY while waiting for stream {sid}; {c.describe()}")
        if f.stream_id != sid:
            if isinstance(f, DataFrame) and f.flow_controlled_length and update_windows:
                c.window_update(0, f.flow_controlled_length)
            continue
        if isinstance(f, RstStreamFrame):
            raise AssertionError(f"stream {sid} reset ({r!r}); {c.describe()}")
        if isinstance(f, HeadersFrame):
            status = dict(f.fields).get(":status")
            if r.status is None and status is not None and status.startswith("1"):
                continue    # interim response
            if r.status is None:
                check_response_fields(f.fields)
                r.status, r.headers = int(status), f.fields
            else:
                assert not any(k.startswith(":") for k, _ in f.fields), \
                    f"pseudo-field in trailers: {f.fields}"
                r.trailers = f.fields
        elif isinstance(f, DataFrame):
            assert r.status is not None, f"DATA before HEADERS on stream {sid}"
            r.body += f.data
            r.data_frames.append(len(f.data))
            if f.flow_controlled_length and update_windows:
                c.window_update(0, f.flow_controlled_length)
                if "END_STREAM" not in f.flags:
                    c.window_update(sid, f.flow_controlled_length)
        if "END_STREAM" in f.flags:
            assert r.status is not None, f"stream {sid} ended without a response"
            return r
