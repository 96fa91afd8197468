/* SPDX-License-Identifier: MIT */
/* p2s wire protocol: everything another implementation needs to talk to
 * p2sd or p2s-fetch. man/p2s.7 is the prose version of this file. */
#pragma once

#include <stdint.h>

#define P2S_MAGIC        0x50325331u /* "P2S1" */
#define P2S_VERSION      2
#define P2S_HDR_SIZE     32
#define P2S_DEFAULT_PORT 7700

#define P2S_HASH_SIZE    32          /* SHA-256 */
#define P2S_MAX_NAME     255
#define P2S_MIN_CHUNK    256u
#define P2S_MAX_CHUNK    (16u << 20)
#define P2S_MAX_CHUNKS   (1u << 24)
/* MANIFEST carries at most this many chunk hashes; longer manifests are
 * split so no frame is larger than a chunk-sized one. */
#define P2S_MANIFEST_PART 2048u
#define P2S_MAX_REASON   200
#define P2S_NO_CHUNK     0xffffffffu

/* Every message, on either transport, starts with this header; all integers
 * big-endian. On TCP, body_len bytes of body follow; on UDP the datagram is
 * exactly header + body. */
struct p2s_hdr {
        uint32_t magic;
        uint8_t version;
        uint8_t type;
        uint16_t flags;
        uint32_t body_len;
        uint32_t swarm_id;
        uint32_t member_id;
        uint64_t token;      /* session token; in HELLO: 0 or the server's cookie */
        uint32_t chunk;      /* chunk index, or P2S_NO_CHUNK */
};

/* Who sends what over which channel.  "ctl" is the control channel (UDP when
 * the server runs --control=udp, the member's TCP connection with
 * --control=tcp); "data" is the other one; "tcp" is always the member's TCP
 * connection (bulk, ordered, one-off); "udp" is always UDP. */
enum p2s_type {
        P2S_HELLO         = 1,  /* C->S udp  body: struct p2s_hello + file name; token 0 or cookie */
        P2S_COOKIE        = 2,  /* S->C udp  token: cookie to echo in HELLO; body: the HELLO's nonce */
        P2S_WELCOME       = 3,  /* S->C udp  ids+token assigned; body: struct p2s_welcome */
        P2S_ATTACH        = 4,  /* C->S tcp  first frame on the member's TCP connection */
        P2S_START         = 5,  /* S->C tcp  body: struct p2s_start */
        P2S_SHARE         = 6,  /* S->C data chunk: index; body: chunk bytes (initial share) */
        P2S_MANIFEST      = 7,  /* S->C tcp  chunk: first index; body: n * 32-byte hashes */
        P2S_MANIFEST_END  = 8,  /* S->C tcp  body: 32-byte hash of the whole file */
        P2S_REQ           = 9,  /* C->S ctl  chunk wanted */
        P2S_DATA          = 10, /* S->C data chunk bytes (relay); flag FROM_CACHE */
        P2S_QUERY         = 11, /* S->C ctl  please upload chunk */
        P2S_UPLOAD        = 12, /* C->S data chunk bytes answering QUERY */
        P2S_NOHAVE        = 13, /* C->S ctl  answer to QUERY: I do not hold it */
        P2S_COMPLETE      = 14, /* C->S ctl  I hold the whole verified file; S echoes with ACK */
        P2S_DONE          = 15, /* S->C ctl  every member is complete: exit 0 */
        P2S_ERR           = 16, /* either    body: struct p2s_err_body + reason text */
        P2S_BYE           = 17, /* C->S ctl  leaving (also the answer to DONE) */
        /* Chunk data over UDP (--control=tcp): SHARE, DATA and UPLOAD are
         * split into FRAGs that each fit one datagram, acknowledged per chunk. */
        P2S_FRAG          = 18, /* either udp chunk: index; body: struct p2s_frag + payload */
        P2S_FRAG_ACK      = 19, /* either udp chunk complete and verified; body: struct p2s_frag_ack */
        P2S_FRAG_NACK     = 20, /* either udp chunk incomplete; body: p2s_frag_ack + bitmap of missing frags from base */
        P2S_HAVE          = 21, /* C->S tcp  chunk: first index; body: bitmap of chunks held from a resumed file */
        P2S_PING          = 22, /* either ctl  keep-alive when quiet; answered with ACK */
        /* What the server serves: on a TCP connection of its own, never a datagram. */
        P2S_LIST          = 23, /* C->S tcp  body: struct p2s_list; token 0 or the COOKIE this connection got */
        P2S_LISTING       = 24, /* S->C tcp  body: u16 count + entries (p2s_listing_entry); flags LAST, MORE */
        P2S_TYPE_MAX      = 24,
};

enum p2s_flags {
        P2S_F_ACK        = 1u << 0, /* this message acknowledges one of the same type */
        P2S_F_FROM_CACHE = 1u << 1, /* DATA: served from the server's cache */
        P2S_F_FATAL      = 1u << 2, /* ERR: the swarm (or session) is over */
        P2S_F_JOIN       = 1u << 3, /* ERR: answers a HELLO; the body starts with its nonce */
        P2S_F_LAST       = 1u << 4, /* LISTING: the last frame answering this LIST */
        P2S_F_MORE       = 1u << 5, /* LISTING with LAST: names remain after its last one */
};

enum p2s_control_mode {
        P2S_CONTROL_UDP = 1,
        P2S_CONTROL_TCP = 2,
};

/* The join handshake. Every HELLO carries a fresh random nonce of the
 * client's, and every COOKIE, WELCOME and ERR answering a HELLO carries it
 * back: a client drops any that does not, so only who sees its HELLOs can
 * answer them. With a swarm secret, the HELLO that echoes the cookie also
 * carries proof = HMAC-SHA256(secret, "p2s-join-1" || cookie (8 bytes,
 * big-endian) || nonce || name); without one the proof is 32 zero bytes. */
#define P2S_NONCE_SIZE   16
#define P2S_PROOF_SIZE   32
#define P2S_PROOF_LABEL  "p2s-join-1"
struct p2s_hello {
        uint8_t nonce[P2S_NONCE_SIZE];
        uint8_t proof[P2S_PROOF_SIZE];
        /* then the file name: 1..P2S_MAX_NAME bytes, no NUL */
};
#define P2S_HELLO_FIXED  (P2S_NONCE_SIZE + P2S_PROOF_SIZE)
/* COOKIE body: the nonce of the HELLO it answers. */
#define P2S_COOKIE_SIZE  P2S_NONCE_SIZE

struct p2s_welcome {
        uint8_t control_mode;   /* enum p2s_control_mode */
        uint8_t reserved;
        uint16_t port;          /* TCP port to ATTACH to */
        uint32_t dgram_size;    /* --control=tcp: largest UDP payload to send (0 in udp mode) */
        uint8_t nonce[P2S_NONCE_SIZE];  /* the HELLO's */
};
#define P2S_WELCOME_SIZE 24
/* The body of a PING the server answers while its swarm gathers: u32
 * members joined, u32 --min-clients (0: the swarm starts on its timeout). */
#define P2S_GATHER_SIZE 8

/* One fragment of a chunk: payload bytes [index * frag_size, ...) of the
 * chunk; every fragment but the last carries exactly frag_size bytes. */
struct p2s_frag {
        uint8_t kind;           /* P2S_SHARE, P2S_DATA or P2S_UPLOAD */
        uint8_t reserved;
        uint16_t index;
        uint16_t count;         /* == ceil(chunk_len / frag_size) */
        uint16_t frag_size;
        uint32_t chunk_len;
};
#define P2S_FRAG_SIZE 12
#define P2S_MAX_DGRAM 65507u            /* largest UDP payload over IPv4 */
#define P2S_MIN_DGRAM (P2S_HDR_SIZE + P2S_FRAG_SIZE + 64)
/* Fits a 1500-byte MTU over IPv6 (40 + 8 bytes of headers) without IP fragmentation. */
#define P2S_DEFAULT_DGRAM 1452u

struct p2s_frag_ack {
        uint8_t kind;
        uint8_t reserved;
        uint16_t base;          /* NACK: bit i of the bitmap is fragment base + i, set when missing */
};
#define P2S_FRAG_ACK_SIZE 4
#define P2S_NACK_MAP_MAX 1024

/* HAVE: bit i of the body (bit i % 8 of byte i / 8, from the least
 * significant, as in FRAG_NACK) set means chunk (chunk field + i) is held;
 * bits past the last chunk are 0 and ignored.
 * A bitmap longer than this is split over several frames. */
#define P2S_HAVE_MAX 8192u

/* The listing (p2s-fetch --list, -r), over TCP only: TCP's handshake has
 * proven the peer's address, so nothing goes to a spoofed one. The first
 * LIST of a connection has token 0 and is answered with a COOKIE frame
 * (token: the cookie of the connection's address, body: the LIST's nonce);
 * the LIST that echoes it carries proof = HMAC-SHA256(secret,
 * P2S_LIST_LABEL || cookie || nonce || prefix) (32 zero bytes without a
 * secret) and is answered by up to P2S_LIST_PAGE entries, names in byte
 * order, P2S_LISTING_MAX per LISTING frame, the last frame flagged LAST
 * (and MORE when the page was cut short: LIST again with after = the last
 * name). A stale cookie gets a new COOKIE. */
#define P2S_LIST_LABEL   "p2s-list-1"
struct p2s_list {
        uint8_t nonce[P2S_NONCE_SIZE];
        uint8_t proof[P2S_PROOF_SIZE];
        uint8_t prefix_len;     /* then prefix_len bytes of prefix (names that start with it) */
        /* then after: 0..P2S_MAX_NAME bytes, the rest of the body: only
         * names greater than it (bytewise); empty: from the first */
};
#define P2S_LIST_FIXED   (P2S_NONCE_SIZE + P2S_PROOF_SIZE + 1)
#define P2S_LIST_MAX     (P2S_LIST_FIXED + 2 * P2S_MAX_NAME)
/* One entry of a LISTING body, after its u16 count: */
struct p2s_listing_entry {
        uint64_t size;
        int64_t mtime_sec;
        uint8_t flags;          /* P2S_LISTING_HASH: sha256 is the file's, else 32 zero bytes */
        uint8_t name_len;       /* 1..P2S_MAX_NAME */
        uint8_t sha256[P2S_HASH_SIZE];
        /* then name_len bytes of name, no NUL */
};
#define P2S_LISTING_HASH      1u
#define P2S_LISTING_ENTRY_FIXED 50
#define P2S_LISTING_MAX       64u       /* entries per LISTING frame */
#define P2S_LIST_PAGE         1024u     /* entries answering one LIST */
#define P2S_LISTING_BODY_MAX  (2 + P2S_LISTING_MAX * (P2S_LISTING_ENTRY_FIXED + P2S_MAX_NAME))

struct p2s_start {
        uint64_t file_size;
        uint32_t chunk_size;
        uint32_t chunk_count;
        /* the source file when the swarm started, for p2s-fetch -R and
         * --preserve: modification time (seconds since the epoch, signed,
         * and nanoseconds below 10^9) and permission bits (mode & 07777) */
        int64_t mtime_sec;
        uint32_t mtime_nsec;
        uint32_t mode;
};
#define P2S_START_SIZE 32

enum p2s_err_code {
        P2S_ERR_PROTO      = 1,  /* malformed or unexpected message */
        P2S_ERR_VERSION    = 2,  /* unsupported protocol version */
        P2S_ERR_NOFILE     = 3,  /* no such file is served */
        P2S_ERR_AUTH       = 4,  /* unknown member or wrong token */
        P2S_ERR_LOST       = 5,  /* a chunk is held by nobody: swarm failed */
        P2S_ERR_SHUTDOWN   = 6,  /* server is going away */
        P2S_ERR_SOURCE     = 7,  /* source file could not be read */
        P2S_ERR_BUSY       = 8,  /* too many members / resources */
        P2S_ERR_SWARM      = 9,  /* swarm ended for another reason */
        P2S_ERR_SECRET     = 10, /* HELLO without the proof of the swarm secret, or a wrong one */
};

/* With P2S_F_JOIN (an ERR answering a HELLO) the body is the HELLO's
 * nonce, then this; the whole body stays within P2S_ERR_BODY_MIN +
 * P2S_MAX_REASON, so the reason is shorter by the nonce. */
struct p2s_err_body {
        uint16_t code;          /* enum p2s_err_code; reason text follows */
};
#define P2S_ERR_BODY_MIN 2
