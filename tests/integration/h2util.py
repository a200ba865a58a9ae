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
