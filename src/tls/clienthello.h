/* TLS ClientHello parser: no I/O, no allocation; bytes in, a verdict and a
 * few fields out.
 *
 * It reads a connection's first bytes before any TLS session exists:
 *   - the HTTPS entry points pick the certificate and the TLS options by SNI
 *     before creating the GnuTLS session (which then reads the same bytes);
 *   - TCP routers with TLS passthrough route by SNI without terminating TLS;
 *   - QUIC carries the same message in CRYPTO frames, without the record
 *     layer (weir_client_hello_parse_message).
 *
 * Both entry points are stateless: call again from the start with more
 * bytes after NEED_MORE. Validation is strict (RFC 8446 §4.1.2 and §4.2,
 * RFC 6066 §3, RFC 7301 §3.1): every length field must agree with what it
 * encloses, every length is bounded before it is used, nothing is read past
 * len. A hello that GnuTLS would refuse may still parse here (this is not a
 * full handshake check), but everything this parser returns OK for is well
 * formed as far as the fields below and the framing go.
 */
#ifndef WEIR_TLS_CLIENTHELLO_H
#define WEIR_TLS_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

/* The largest TLSPlaintext.length accepted on a hello record: 2^14 + 256
 * (the TLSCiphertext limit, tolerated for the record layer of old
 * clients). A longer record is INVALID. */
#define WEIR_CH_MAX_RECORD (16384 + 256)

/* What a ClientHello offers. Slices borrow from the caller's bytes (or its
 * scratch buffer): they stay valid while those bytes do. After a result
 * other than WEIR_CH_OK the structure is zeroed. */
typedef struct {
    uint16_t legacy_version; /* ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3) */
    uint16_t max_version;    /* highest version offered: the supported_versions extension
                              * (GREASE values 0x?a?a ignored; 0 when it lists only GREASE),
                              * else legacy_version */
    weir_slice_t sni;        /* host_name of server_name, as sent: not NUL-terminated, case
                              * and a trailing dot kept; never contains NUL; empty if none */
    weir_slice_t alpn;       /* the raw ProtocolNameList of ALPN, without its 2-byte length:
                              * well-formed (see weir_client_hello_alpn_at); empty if none */
    bool has_sni, has_alpn;
} weir_client_hello_t;

enum {
    WEIR_CH_OK = 1,        /* a complete, valid ClientHello; *out is filled */
    WEIR_CH_NEED_MORE = 0, /* the bytes so far may be the start of one: read more */
    WEIR_CH_NOT_TLS = -1,  /* not a TLS handshake at all (plain HTTP, the h2c preface...) */
    WEIR_CH_INVALID = -2,  /* TLS, but malformed or not a ClientHello: close */
};

/* Parses the start of a TCP stream: one or more TLS handshake records
 * (content type 22) carrying a ClientHello.
 *
 * Returns WEIR_CH_NOT_TLS when the first byte is not 22 or the record's
 * major version byte is not 3. Otherwise the hello may be split across
 * several records (then its bytes are gathered in scratch[0..cap)), but
 * nothing else may come before it ends: a non-handshake record (alert,
 * change_cipher_spec, application data) or a handshake message other than
 * a ClientHello first is INVALID, and so are other handshake bytes after
 * the hello in its last record; records that follow that one are not
 * looked at. A hello longer than cap bytes (4-byte header included) is
 * INVALID however it is split, as soon as its length is known; so is a
 * record of length 0 or over WEIR_CH_MAX_RECORD. A strict prefix of a valid
 * hello is NEED_MORE; the caller bounds how long it waits (a hello of cap
 * bytes spread over 1-byte records takes 6 * cap bytes of input).
 *
 * The slices of *out point into p when the hello sits in one record, else
 * into scratch. scratch may be NULL when cap is 0. */
int weir_client_hello_parse_records(const uint8_t *p, size_t len, uint8_t *scratch, size_t cap,
                                    weir_client_hello_t *out);

/* Parses a bare handshake message (type 1, 24-bit length, body), as QUIC's
 * CRYPTO stream carries it from offset 0. Returns NEED_MORE for a strict
 * prefix, INVALID for another message type, a length no ClientHello can
 * have, a malformed body, or bytes after the message. Slices point into
 * p. */
int weir_client_hello_parse_message(const uint8_t *p, size_t len, weir_client_hello_t *out);

/* ALPN protocol number i (from 0) of the hello, in the client's order of
 * preference: true and *proto (1 to 255 bytes, borrowed like ch->alpn), or
 * false when there are not that many (or ch->alpn is not well formed). */
bool weir_client_hello_alpn_at(const weir_client_hello_t *ch, size_t i, weir_slice_t *proto);

/* True if the hello offers proto, a NUL-terminated protocol name compared
 * byte for byte ("h2", "http/1.1"). */
bool weir_client_hello_offers_alpn(const weir_client_hello_t *ch, const char *proto);

#endif
