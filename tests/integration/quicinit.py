"""QUIC v1 client Initial packets built from scratch (RFC 9000 §17.2.2,
RFC 9001 §5): Initial keys derived from the destination connection ID,
AES-128-GCM packet protection and AES header protection. Tests use them to
send handshakes that never complete (a half-open flood) or carefully broken
ones, which no real client produces on purpose."""

import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives import hmac

INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
INITIAL_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")  # RFC 9369
VERSIONS = {1: (0x00000001, INITIAL_SALT_V1, b"quic ", 0), 2: (0x6b3343cf, INITIAL_SALT_V2, b"quicv2 ", 1)}


def _extract(salt, ikm):
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def _expand_label(secret, label, length):
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def client_keys(dcid, version=1):
    _, salt, prefix, _ = VERSIONS[version]
    secret = _expand_label(_extract(salt, dcid), b"client in", 32)
    return (_expand_label(secret, prefix + b"key", 16), _expand_label(secret, prefix + b"iv", 12),
            _expand_label(secret, prefix + b"hp", 16))


def varint(v):
    if v < 64:
        return bytes([v])
    if v < 16384:
        return struct.pack(">H", 0x4000 | v)
    return struct.pack(">I", 0x80000000 | v)


def initial(dcid, scid, crypto, offset=0, pn=0, size=1200, token=b"", version=1):
    """A protected Initial packet carrying `crypto` at `offset` of the CRYPTO
    stream, padded to `size` bytes; version 1 (RFC 9000) or 2 (RFC 9369,
    whose Initial type bits are 01)."""
    key, iv, hp = client_keys(dcid, version)
    number, _, _, type_bits = VERSIONS[version]
    frame = b"\x06" + varint(offset) + varint(len(crypto)) + crypto
    pnlen = 4
    head_wo_len = (bytes([0xC0 | type_bits << 4 | (pnlen - 1)]) + struct.pack(">I", number) +
                   bytes([len(dcid)]) + dcid +
                   bytes([len(scid)]) + scid + varint(len(token)) + token)
    # the Length field is 2 bytes (varint 0x4000 form): payload fills up to size
    payload_len = size - len(head_wo_len) - 2 - pnlen - 16
    payload = frame + b"\x00" * max(0, payload_len - len(frame))
    header = head_wo_len + struct.pack(">H", 0x4000 | (pnlen + len(payload) + 16)) + \
        struct.pack(">I", pn)
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    pn_off = len(header) - pnlen
    sample = sealed[4 - pnlen:4 - pnlen + 16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pnb = bytes(a ^ b for a, b in zip(header[pn_off:], mask[1:1 + pnlen]))
    return first + header[1:pn_off] + pnb + sealed


def partial_client_hello():
    """The first bytes of a ClientHello that announces more than it sends:
    a server waits for the rest (the connection stays half open)."""
    return b"\x01\x00\x02\x00" + b"\x03\x03" + os.urandom(32) + b"\x00"

