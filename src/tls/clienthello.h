/* TLS ClientHello parser: no I/O, bytes in, a few fields out.
 *
 * Used to look at a connection's first bytes before any TLS session
 * exists: the SNI picks the certificate and the TLS options (and later
 * the TCP router of a TLS passthrough); QUIC Initial packets carry the
 * same message without the record layer. Strict per RFC 8446 §4.1.2,
 * RFC 6066 §3 and RFC 7301; every length is bounded.
 */
#ifndef WEIR_TLS_CLIENTHELLO_H
#define WEIR_TLS_CLIENTHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

typedef struct {
    uint16_t legacy_version; /* ClientHello.legacy_version */
    uint16_t max_version;    /* highest offered: supported_versions, else legacy_version */
    weir_slice_t sni;        /* server_name host_name as sent; empty if none */
    weir_slice_t alpn;       /* raw ProtocolNameList (without its length); empty if none */
    bool has_sni, has_alpn;
} weir_client_hello_t;

enum { WEIR_CH_OK = 1, WEIR_CH_NEED_MORE = 0, WEIR_CH_NOT_TLS = -1, WEIR_CH_INVALID = -2 };

/* From the start of a TCP stream: handshake records (content type 22)
 * carrying a ClientHello, possibly split across several records (they are
 * reassembled into scratch[0..cap); a larger hello is INVALID). Returns OK,
 * NEED_MORE (a valid prefix), NOT_TLS (not a TLS handshake record: HTTP,
 * the h2c preface...) or INVALID. Slices in *out point into p or scratch. */
int weir_client_hello_parse_records(const uint8_t *p, size_t len, uint8_t *scratch, size_t cap,
                                    weir_client_hello_t *out);

/* A bare handshake message (type 1, 24-bit length, body) as QUIC's CRYPTO
 * stream carries it; a prefix is NEED_MORE. */
int weir_client_hello_parse_message(const uint8_t *p, size_t len, weir_client_hello_t *out);

/* ALPN protocol i of the hello: true and *proto, or false past the end. */
bool weir_client_hello_alpn_at(const weir_client_hello_t *ch, size_t i, weir_slice_t *proto);

/* True if the hello offers proto (exact match). */
bool weir_client_hello_offers_alpn(const weir_client_hello_t *ch, const char *proto);

#endif
