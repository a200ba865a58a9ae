/* Reading a client's QUIC Initial packets without the server's keys: the
 * Initial keys come from the client's first Destination Connection ID
 * (RFC 9001 §5.2 for QUIC v1, RFC 9369 §3.3 for QUIC v2 and the
 * provisional v2 number 0x709a50c4 that ngtcp2 0.12 speaks), so anyone on
 * the path can remove header protection, decrypt the payload and read the
 * CRYPTO frames that carry the TLS ClientHello. QUIC passthrough routes a
 * new connection by the hello's SNI and ALPN that way.
 *
 * The hello may span several Initial packets, and its CRYPTO frames may
 * come split, out of order or repeated (Chromium and ngtcp2 shuffle them
 * on purpose); several packets may be coalesced in one datagram. No I/O;
 * the only allocation is the reassembly buffer, bounded by
 * WEIR_QI_HELLO_MAX.
 */
#ifndef WEIR_QUIC_INITIAL_H
#define WEIR_QUIC_INITIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/clienthello.h"

#define WEIR_QUIC_V1 0x00000001u
#define WEIR_QUIC_V2 0x6b3343cfu       /* RFC 9369 */
#define WEIR_QUIC_V2_DRAFT 0x709a50c4u /* the provisional number (ngtcp2 0.12) */

#define WEIR_QI_HELLO_MAX 16384 /* the largest ClientHello accepted (4-byte header included) */
#define WEIR_QI_MIN_DATAGRAM 1200 /* RFC 9000 §14.1: a client's Initial datagram is at least this */
#define WEIR_QI_MAX_RANGES 32     /* disjoint CRYPTO ranges held before the hello is whole */

/* The invariant header fields of a long-header packet (RFC 8999 §5.1). */
typedef struct {
    uint32_t version; /* 0: Version Negotiation */
    uint8_t type;     /* the packet type bits as the version defines them (v1 numbering:
                       * 0 Initial, 1 0-RTT, 2 Handshake, 3 Retry); 0xff for unknown versions */
    uint8_t dcid_len, scid_len;
    const uint8_t *dcid, *scid;
} weir_quic_long_t;

enum { WEIR_QUIC_INITIAL = 0, WEIR_QUIC_0RTT = 1, WEIR_QUIC_HANDSHAKE = 2, WEIR_QUIC_RETRY = 3 };

/* Reads the long header at the start of d[0..len): true and *out, or false
 * (a short header, a truncated header, a connection ID over 20 bytes). The
 * type is mapped to v1 numbering for the versions above. */
bool weir_quic_long_header(const uint8_t *d, size_t len, weir_quic_long_t *out);

/* Whether version is one this module can read Initials of. */
bool weir_quic_version_known(uint32_t version);

/* The client Initial keys of a version for a Destination Connection ID:
 * AEAD key, IV and header protection key. Returns 0, or -1 for an unknown
 * version or a crypto library failure. */
int weir_quic_initial_keys(uint32_t version, const uint8_t *dcid, size_t dcid_len,
                           uint8_t key[16], uint8_t iv[12], uint8_t hp[16]);

/* What a flow's client Initials have delivered so far. Zero it (or call
 * weir_quic_hello_init) before the first datagram. */
typedef struct {
    uint32_t version;
    uint8_t dcid[20], dcid_len; /* the connection ID the keys come from */
    bool keyed;
    uint8_t key[16], iv[12], hp[16];
    int64_t largest_pn; /* largest Initial packet number decrypted, -1 none */
    uint8_t *crypto;    /* the CRYPTO stream from offset 0 (malloc'd, cap bytes) */
    size_t cap;
    size_t need;        /* 4 + the hello's length once its header is in, else 0 */
    uint32_t ranges[WEIR_QI_MAX_RANGES][2]; /* received [start, end), sorted, disjoint */
    size_t num_ranges;
} weir_quic_hello_t;

void weir_quic_hello_init(weir_quic_hello_t *h);
void weir_quic_hello_free(weir_quic_hello_t *h);

enum {
    WEIR_QI_DONE = 1,  /* the ClientHello is complete: weir_quic_hello_get */
    WEIR_QI_MORE = 0,  /* keep feeding datagrams */
    WEIR_QI_NONE = -1, /* no client Initial this flow can read in the datagram */
    WEIR_QI_BAD = -2,  /* an Initial that is malformed, a hello too long or not a hello */
};

/* Flags a datagram earns in weir_quic_hello_feed. */
#define WEIR_QI_F_INITIAL 1u /* it carries an Initial packet of this flow */
#define WEIR_QI_F_OFFSET0 2u /* one of its CRYPTO frames starts at offset 0 */

/* Feeds one client datagram: each coalesced long-header packet is looked
 * at; Initials of the flow's version and first DCID are decrypted (one
 * that does not authenticate is skipped, as a receiver must) and their
 * CRYPTO frames kept. A datagram under WEIR_QI_MIN_DATAGRAM bytes with an
 * Initial is NONE (RFC 9000 drops it). *flags gets WEIR_QI_F_*. */
int weir_quic_hello_feed(weir_quic_hello_t *h, const uint8_t *d, size_t len, unsigned *flags);

/* The frames of one decrypted Initial payload (what weir_quic_hello_feed
 * does after decryption; the fuzz target drives it directly). Returns
 * WEIR_QI_MORE or WEIR_QI_BAD. */
int weir_quic_hello_frames(weir_quic_hello_t *h, const uint8_t *p, size_t len, unsigned *flags);
/* Whether the CRYPTO bytes hold the whole hello. */
bool weir_quic_hello_done(const weir_quic_hello_t *h);

/* After DONE: the parsed hello (slices point into h->crypto): WEIR_CH_OK,
 * anything else is a hello to refuse. */
int weir_quic_hello_get(const weir_quic_hello_t *h, weir_client_hello_t *ch);

#endif
