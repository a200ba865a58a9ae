"""HTTP/2 backends for the tests: an h2c origin (Debian's python3-h2, one
thread per connection owning its H2Connection) and a black-hole relay.

H2Origin accepts the HTTP/2 preface (prior knowledge) and HTTP/1.1 on one
port, as Go's h2c handler does, so a WebSocket upgrade meant for an h2c://
server can be checked to arrive over HTTP/1.1. What it does per request:

  GET /size/N        200 with N bytes of origin.pattern_chunks
  anything else      200, the request body streamed back as it arrives
                     (echo: each DATA frame answered at once, which makes
                     gRPC-style ping-pong possible), then trailers
                     grpc-status: 0 and grpc-message: ok when the request
                     carried te: trailers
  /slow              as above after `delay` seconds
  /reset-mid         a head promising 100000 bytes, 1000 of them, then
                     RST_STREAM INTERNAL_ERROR

Options: max_streams (SETTINGS_MAX_CONCURRENT_STREAMS), goaway_after (a
graceful GOAWAY once a connection received that many streams: the streams
up to the last one announced are answered, later ones ignored, then the
connection closes), refuse_every (every k-th stream gets RST_STREAM
REFUSED_STREAM). Counters: connections, streams, refused, goaways,
max_open (most streams open at once on one connection), requests (method,
path, headers, protocol) and h1_requests.

Relay sits between weir and a backend: freeze() stops forwarding on every
connection pair it has (both TCP connections stay open, nothing moves),
while connections accepted afterwards are forwarded: a middlebox whose old
flows are dead while new ones reach a healthy backend.
"""

import select
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from origin import pattern_chunks

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _close_all(listener, socks):
    """Closes a listening socket (waking its accept()) and the given sockets."""
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    for s in [listener, *socks]:
        try:
            s.close()
        except OSError:
            pass


def _listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    return s


class H2Origin:
    def __init__(self, max_streams=None, goaway_after=0, refuse_every=0, delay=0.5):
        self.max_streams = max_streams
        self.goaway_after = goaway_after
        self.refuse_every = refuse_every
        self.delay = delay
        self.sock = _listener()
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.streams = 0
        self.refused = 0
        self.goaways = 0
        self.max_open = 0
        self.requests = []
        self.h1_requests = []
        self.resets_received = []  # error codes of the RST_STREAMs weir sent
        self._stopped = False
        self._socks = set()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="h2origin")
        self._thread.start()

    def stop(self):
        self._stopped = True
        with self.lock:
            _close_all(self.sock, list(self._socks))
        self._thread.join(5)

    def _accept(self):
        while not self._stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self._socks.add(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(30)
            first = b""
            while len(first) < len(PREFACE):
                d = c.recv(len(PREFACE) - len(first))
                if not d:
                    return
                first += d
                if not PREFACE.startswith(first):
                    break
            if first.startswith(PREFACE):
                with self.lock:
                    self.connections += 1
                _H2Conn(self, c, first).run()
            else:
                self._serve_h1(c, first)
        except (OSError, ValueError, h2.exceptions.ProtocolError):
            pass  # stop() closed the socket, or weir went away
        finally:
            with self.lock:
                self._socks.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def _serve_h1(self, c, data):
        """HTTP/1.1: a WebSocket upgrade gets 101 and its bytes echoed; any
        other request a short 200."""
        while b"\r\n\r\n" not in data:
            d = c.recv(65536)
            if not d:
                return
            data += d
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        with self.lock:
            self.h1_requests.append((method, path, headers))
        if headers.get("upgrade", "").lower() == "websocket":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
            if rest:
                c.sendall(rest)
            while True:
                d = c.recv(65536)
                if not d:
                    return
                c.sendall(d)
        body = b"h1 ok\n"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                  % (len(body), body))


class _H2Conn:
    """One backend connection (runs on its own thread)."""

    def __init__(self, origin, sock, first):
        self.o = origin
        self.sock = sock
        self.first = first
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(cfg)
        self.count = 0
        self.open = set()
        self.pending = []  # (due time, stream id)
        self.out = {}  # stream id -> bytes waiting for window
        self.ended = set()  # streams whose response must end after out drains
        self.trailers = {}
        self.last_id = None  # set once GOAWAY went out

    def run(self):
        conn = self.conn
        conn.initiate_connection()
        if self.o.max_streams:
            conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                  self.o.max_streams})
        self._events(conn.receive_data(self.first))
        self._flush()
        while True:
            if self.last_id is not None and not self.open:
                # GOAWAY sent and every stream it covers is done: close
                # gracefully (FIN, then read until weir closes), so no
                # reset can destroy responses still in flight
                self._flush()
                self.sock.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    r, _, _ = select.select([self.sock], [], [], 0.2)
                    if r and not self.sock.recv(65536):
                        break
                return
            timeout = 0.5
            if self.pending:
                timeout = max(0.0, min(t for t, _ in self.pending) - time.monotonic())
            r, _, _ = select.select([self.sock], [], [], timeout)
            if r:
                d = self.sock.recv(65536)
                if not d:
                    return
                self._events(conn.receive_data(d))
            now = time.monotonic()
            due = [p for p in self.pending if p[0] <= now]
            self.pending = [p for p in self.pending if p[0] > now]
            for _, sid in due:
                self._respond(sid)
            self._send_waiting()
            self._flush()

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _events(self, events):
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self._request(ev)
            elif isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if ev.stream_id in self.open and ev.data:
                    self._queue(ev.stream_id, ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                sid = ev.stream_id
                if sid in self.open and not any(s == sid for _, s in self.pending):
                    self._finish(sid)
            elif isinstance(ev, h2.events.StreamReset):
                with self.o.lock:
                    self.o.resets_received.append(ev.error_code)
                self.open.discard(ev.stream_id)
                self.pending = [p for p in self.pending if p[1] != ev.stream_id]
                self.out.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.WindowUpdated):
                pass
        self._send_waiting()
        self._flush()

    def _request(self, ev):
        sid = ev.stream_id
        if self.last_id is not None and sid > self.last_id:
            return  # after our GOAWAY: weir replays it elsewhere
        headers = {k.decode(): v.decode() for k, v in ev.headers}
        self.count += 1
        with self.o.lock:
            self.o.streams += 1
            self.o.requests.append(headers)
        if self.o.refuse_every and self.count % self.o.refuse_every == 0:
            with self.o.lock:
                self.o.refused += 1
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self.open.add(sid)
        with self.o.lock:
            self.o.max_open = max(self.o.max_open, len(self.open))
        path = headers.get(":path", "/")
        self.trailers[sid] = headers.get("te") == "trailers"
        if path.startswith("/size/"):
            size = int(path[6:])
            self.conn.send_headers(sid, [(":status", "200"), ("content-length", str(size)),
                                         ("x-origin-protocol", "h2")])
            self._queue(sid, b"".join(pattern_chunks(size)))
            self.ended.add(sid)
        elif path.startswith("/slow"):
            self.pending.append((time.monotonic() + self.o.delay, sid))
        elif path.startswith("/reset-mid"):
            # a head, part of the body, then RST_STREAM: a broken response
            self.conn.send_headers(sid, [(":status", "200"), ("content-length", "100000")])
            self.conn.send_data(sid, b"x" * 1000)
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.open.discard(sid)
        else:
            self.conn.send_headers(sid, [(":status", "200"), ("x-origin-protocol", "h2"),
                                         ("x-authority", headers.get(":authority", ""))])
        if self.o.goaway_after and self.count >= self.o.goaway_after and self.last_id is None:
            self._goaway(sid)

    def _goaway(self, last):
        """A graceful GOAWAY written by hand, so the H2Connection keeps
        serving the streams it covers."""
        self._flush()
        self.last_id = last
        with self.o.lock:
            self.o.goaways += 1
        payload = struct.pack(">II", last, 0)
        self.sock.sendall(struct.pack(">I", len(payload))[1:] + bytes([7, 0]) +
                          struct.pack(">I", 0) + payload)

    def _respond(self, sid):
        if sid not in self.open:
            return
        body = b"slow ok\n"
        self.conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
        self._queue(sid, body)
        self.ended.add(sid)

    def _queue(self, sid, data):
        self.out[sid] = self.out.get(sid, b"") + data

    def _finish(self, sid):
        """The request ended: end the echo (with trailers when asked)."""
        if sid in self.ended:
            return
        self.ended.add(sid)

    def _send_waiting(self):
        conn = self.conn
        for sid in list(self.out.keys() | self.ended):
            if sid not in self.open:
                self.out.pop(sid, None)
                self.ended.discard(sid)
                continue
            data = self.out.get(sid, b"")
            while data:
                n = min(len(data), conn.local_flow_control_window(sid),
                        conn.max_outbound_frame_size)
                if n <= 0:
                    break
                conn.send_data(sid, data[:n])
                data = data[n:]
            if data:
                self.out[sid] = data
                continue
            self.out.pop(sid, None)
            if sid in self.ended:
                self.ended.discard(sid)
                self.open.discard(sid)
                if self.trailers.pop(sid, False):
                    conn.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "ok")],
                                      end_stream=True)
                else:
                    conn.end_stream(sid)


class Relay:
    """TCP relay on 127.0.0.1 to (host, port); freeze() black-holes the
    connection pairs that exist at that moment."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.sock = _listener()
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.lock = threading.Lock()
        self.pairs = []  # [client sock, backend sock, frozen flag holder]
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True, name="relay")
        self._thread.start()

    def freeze(self):
        with self.lock:
            for p in self.pairs:
                p[2] = True

    def open_pairs(self):
        with self.lock:
            return sum(1 for p in self.pairs if not p[3])

    def stop(self):
        self._stopped = True
        with self.lock:
            _close_all(self.sock, [s for p in self.pairs for s in p[:2]])
        self._thread.join(5)

    def _accept(self):
        while not self._stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            pair = [c, b, False, False]
            with self.lock:
                self.accepted += 1
                self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair):
        c, b = pair[0], pair[1]
        try:
            while not self._stopped:
                r, _, _ = select.select([c, b], [], [], 0.1)
                if pair[2]:
                    # Black hole: both connections stay open, nothing moves.
                    time.sleep(0.1)
                    continue
                for s in r:
                    d = s.recv(65536)
                    if not d:
                        return
                    (b if s is c else c).sendall(d)
        except (OSError, ValueError):
            pass
        finally:
            pair[3] = True
            if not pair[2]:
                for s in (c, b):
                    try:
                        s.close()
                    except OSError:
                        pass
