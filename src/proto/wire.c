/* SPDX-License-Identifier: MIT */
/* Wire codec. Integers are read and written byte by byte: the struct never
 * touches the wire, so its padding and the host's byte order cannot leak. */
#include <stdbool.h>
#include <string.h>

#include "proto/wire.h"
#include "proto/wire-bytes.h"

/* Per-type rules, OpenNTPD style: one table, checked before anything reads
 * the body. A type's absence from the table (zero row) is impossible for
 * 1..P2S_TYPE_MAX; index 0 stays unused.
 *
 * dir and the two channel columns are man/p2s.7's "Control modes" table:
 * which way a message may travel, and over what, in each control mode.
 * Control messages (REQ, QUERY, NOHAVE, COMPLETE, DONE, BYE, PING) are accepted
 * on either transport in either mode: a retry escalates to TCP after two
 * lost datagrams, and NOHAVE without ACK always goes over TCP. Chunk bytes
 * travel as SHARE/DATA/UPLOAD frames only in udp mode, as FRAG datagrams
 * only in tcp mode. ERR goes server to member only: p2s-fetch sends none.
 * The listing (LIST, LISTING, and the COOKIE answering a LIST) is TCP only:
 * a datagram would reach whoever's address it claims. */
#define D_C2S  WIRE_DIR_C2S
#define D_S2C  WIRE_DIR_S2C
#define D_BOTH (WIRE_DIR_C2S | WIRE_DIR_S2C)
#define C_UDP  WIRE_CH_UDP
#define C_TCP  WIRE_CH_TCP
#define C_BOTH (WIRE_CH_UDP | WIRE_CH_TCP)
#define C_NONE 0

struct wire_rule {
        uint32_t min;
        uint32_t max;
        uint8_t needs_chunk;    /* 1: chunk != P2S_NO_CHUNK; 0: chunk == P2S_NO_CHUNK */
        uint8_t dir;            /* enum wire_dir bits it may travel */
        uint8_t ch_udp_mode;    /* enum wire_channel bits allowed with --control udp */
        uint8_t ch_tcp_mode;    /* ... with --control tcp */
        uint8_t chunk_sized;    /* body is a chunk: bounded by the swarm's chunk size */
        const char *name;
};

static const struct wire_rule wire_rules[P2S_TYPE_MAX + 1] = {
        /*                      min, max, chunk, dir, udp mode, tcp mode, chunk sized */
        [P2S_HELLO]        = { P2S_HELLO_FIXED + 1, P2S_HELLO_FIXED + P2S_MAX_NAME, 0, D_C2S, C_UDP, C_UDP, 0,
                               "HELLO" },
        [P2S_COOKIE]       = { P2S_COOKIE_SIZE, P2S_COOKIE_SIZE, 0, D_S2C, C_BOTH, C_BOTH, 0, "COOKIE" },
        [P2S_WELCOME]      = { P2S_WELCOME_SIZE, P2S_WELCOME_SIZE, 0, D_S2C, C_UDP, C_UDP, 0, "WELCOME" },
        [P2S_ATTACH]       = { 0, 0, 0, D_C2S, C_TCP, C_TCP, 0, "ATTACH" },
        [P2S_START]        = { P2S_START_SIZE, P2S_START_SIZE, 0, D_S2C, C_TCP, C_TCP, 0, "START" },
        [P2S_SHARE]        = { 1, P2S_MAX_CHUNK, 1, D_S2C, C_TCP, C_NONE, 1, "SHARE" },
        [P2S_MANIFEST]     = { P2S_HASH_SIZE, P2S_MANIFEST_PART * P2S_HASH_SIZE, 1, D_S2C, C_TCP, C_TCP, 0,
                               "MANIFEST" },
        [P2S_MANIFEST_END] = { P2S_HASH_SIZE, P2S_HASH_SIZE, 0, D_S2C, C_TCP, C_TCP, 0, "MANIFEST_END" },
        [P2S_REQ]          = { 0, 0, 1, D_C2S, C_BOTH, C_BOTH, 0, "REQ" },
        [P2S_DATA]         = { 1, P2S_MAX_CHUNK, 1, D_S2C, C_TCP, C_NONE, 1, "DATA" },
        [P2S_QUERY]        = { 0, 0, 1, D_S2C, C_BOTH, C_BOTH, 0, "QUERY" },
        [P2S_UPLOAD]       = { 1, P2S_MAX_CHUNK, 1, D_C2S, C_TCP, C_NONE, 1, "UPLOAD" },
        [P2S_NOHAVE]       = { 0, 0, 1, D_C2S, C_BOTH, C_BOTH, 0, "NOHAVE" },
        [P2S_COMPLETE]     = { 0, 0, 0, D_BOTH, C_BOTH, C_BOTH, 0, "COMPLETE" },
        [P2S_DONE]         = { 0, 0, 0, D_S2C, C_BOTH, C_BOTH, 0, "DONE" },
        [P2S_ERR]          = { P2S_ERR_BODY_MIN, P2S_ERR_BODY_MIN + P2S_MAX_REASON, 0, D_S2C, C_BOTH, C_BOTH, 0,
                               "ERR" },
        [P2S_BYE]          = { 0, 0, 0, D_C2S, C_BOTH, C_BOTH, 0, "BYE" },
        [P2S_FRAG]         = { P2S_FRAG_SIZE + 1, P2S_MAX_DGRAM - P2S_HDR_SIZE, 1, D_BOTH, C_NONE, C_UDP, 0,
                               "FRAG" },
        [P2S_FRAG_ACK]     = { P2S_FRAG_ACK_SIZE, P2S_FRAG_ACK_SIZE, 1, D_BOTH, C_NONE, C_UDP, 0, "FRAG_ACK" },
        [P2S_FRAG_NACK]    = { P2S_FRAG_ACK_SIZE + 1, P2S_FRAG_ACK_SIZE + P2S_NACK_MAP_MAX, 1, D_BOTH, C_NONE,
                               C_UDP, 0, "FRAG_NACK" },
        [P2S_HAVE]         = { 1, P2S_HAVE_MAX, 1, D_C2S, C_TCP, C_TCP, 0, "HAVE" },
        [P2S_PING]         = { 0, P2S_GATHER_SIZE, 0, D_BOTH, C_BOTH, C_BOTH, 0, "PING" },
        [P2S_LIST]         = { P2S_LIST_FIXED, P2S_LIST_MAX, 0, D_C2S, C_TCP, C_TCP, 0, "LIST" },
        [P2S_LISTING]      = { 2, P2S_LISTING_BODY_MAX, 0, D_S2C, C_TCP, C_TCP, 0, "LISTING" },
};

static bool frag_kind_ok(uint8_t kind)
{
        return kind == P2S_SHARE || kind == P2S_DATA || kind == P2S_UPLOAD;
}

static bool wire_type_known(uint8_t type)
{
        return type >= 1 && type <= P2S_TYPE_MAX;
}

const char *wire_err_name(uint16_t code)
{
        static const char *const names[] = {
                [P2S_ERR_PROTO] = "protocol error",
                [P2S_ERR_VERSION] = "unsupported protocol version",
                [P2S_ERR_NOFILE] = "no such file is served",
                [P2S_ERR_AUTH] = "unknown member or wrong token",
                [P2S_ERR_LOST] = "a chunk is held by nobody",
                [P2S_ERR_SHUTDOWN] = "the server is shutting down",
                [P2S_ERR_SOURCE] = "the source file could not be read",
                [P2S_ERR_BUSY] = "server busy",
                [P2S_ERR_SWARM] = "the swarm ended",
                [P2S_ERR_SECRET] = "wrong or missing swarm secret",
        };
        if (code < sizeof(names) / sizeof(names[0]) && names[code])
                return names[code];
        return "unknown error";
}

const char *wire_strerror(int e)
{
        switch (e) {
        case WIRE_OK:        return "ok";
        case WIRE_E_SHORT:   return "short";
        case WIRE_E_MAGIC:   return "bad magic";
        case WIRE_E_VERSION: return "bad version";
        case WIRE_E_TYPE:    return "unknown type";
        case WIRE_E_LENGTH:  return "bad length";
        case WIRE_E_BODY:    return "bad body";
        case WIRE_E_CHUNK:   return "bad chunk field";
        case WIRE_E_ROUTE:   return "message not allowed here";
        default:             return "?";
        }
}

uint32_t wire_max_body(uint8_t type, uint32_t chunk_size)
{
        if (!wire_type_known(type))
                return 0;
        const struct wire_rule *r = &wire_rules[type];
        if (r->chunk_sized && chunk_size > 0 && chunk_size < r->max)
                return chunk_size;
        return r->max;
}

int wire_check_route(uint8_t type, enum wire_dir dir, enum wire_channel ch, int control_mode)
{
        if (!wire_type_known(type))
                return WIRE_E_TYPE;
        const struct wire_rule *r = &wire_rules[type];
        /* exactly one direction and one channel: a mask would ask "any of" */
        if ((dir != WIRE_DIR_C2S && dir != WIRE_DIR_S2C) || (ch != WIRE_CH_UDP && ch != WIRE_CH_TCP))
                return WIRE_E_ROUTE;
        unsigned allowed;
        switch (control_mode) {
        case P2S_CONTROL_UDP:
                allowed = r->ch_udp_mode;
                break;
        case P2S_CONTROL_TCP:
                allowed = r->ch_tcp_mode;
                break;
        case 0:
                /* before WELCOME: only what both modes agree on */
                allowed = r->ch_udp_mode & r->ch_tcp_mode;
                break;
        default:
                return WIRE_E_ROUTE;
        }
        if (!(r->dir & dir) || !(allowed & ch))
                return WIRE_E_ROUTE;
        return WIRE_OK;
}

int wire_check_frag_route(uint8_t type, uint8_t kind, enum wire_dir dir)
{
        if (type != P2S_FRAG && type != P2S_FRAG_ACK && type != P2S_FRAG_NACK)
                return WIRE_OK;
        if (!frag_kind_ok(kind))
                return WIRE_E_BODY;
        /* the chunk's own direction: SHARE and DATA to the member, UPLOAD to the server */
        enum wire_dir data_dir = kind == P2S_UPLOAD ? WIRE_DIR_C2S : WIRE_DIR_S2C;
        enum wire_dir want = type == P2S_FRAG ? data_dir : (enum wire_dir)(data_dir ^ (WIRE_DIR_C2S | WIRE_DIR_S2C));
        return dir == want ? WIRE_OK : WIRE_E_ROUTE;
}

int wire_check_frame_hdr(const struct p2s_hdr *h, enum wire_dir dir, int control_mode, uint32_t chunk_size)
{
        int r = wire_check_route(h->type, dir, WIRE_CH_TCP, control_mode);
        if (r != WIRE_OK)
                return r;
        if (h->body_len > wire_max_body(h->type, chunk_size))
                return WIRE_E_LENGTH;
        return WIRE_OK;
}

const char *wire_type_name(uint8_t type)
{
        return wire_type_known(type) ? wire_rules[type].name : "?";
}

/* Length and chunk checks on a header already in host order; shared by
 * wire_decode_hdr and wire_check_body so neither trusts its caller. */
static int wire_check_framing(const struct p2s_hdr *h)
{
        const struct wire_rule *r;

        if (!wire_type_known(h->type))
                return WIRE_E_TYPE;
        r = &wire_rules[h->type];
        if (h->body_len < r->min || h->body_len > r->max)
                return WIRE_E_LENGTH;
        /* Hashes come whole: a partial one would shift every later index. */
        if (h->type == P2S_MANIFEST && h->body_len % P2S_HASH_SIZE != 0)
                return WIRE_E_LENGTH;
        if (r->needs_chunk ? h->chunk == P2S_NO_CHUNK : h->chunk != P2S_NO_CHUNK)
                return WIRE_E_CHUNK;
        return WIRE_OK;
}

int wire_decode_hdr(const uint8_t *buf, size_t len, struct p2s_hdr *out)
{
        struct p2s_hdr h;

        if (!buf || len < P2S_HDR_SIZE)
                return WIRE_E_SHORT;
        h.magic = get_u32(buf + 0);
        h.version = buf[4];
        h.type = buf[5];
        h.flags = get_u16(buf + 6);
        h.body_len = get_u32(buf + 8);
        h.swarm_id = get_u32(buf + 12);
        h.member_id = get_u32(buf + 16);
        h.token = get_u64(buf + 20);
        h.chunk = get_u32(buf + 28);

        /* Filled even on rejection: the caller may log the type or answer
         * an unknown version with an ERR. */
        if (out)
                *out = h;
        if (h.magic != P2S_MAGIC)
                return WIRE_E_MAGIC;
        if (h.version != P2S_VERSION)
                return WIRE_E_VERSION;
        return wire_check_framing(&h);
}

int wire_check_body(const struct p2s_hdr *h, const uint8_t *body)
{
        int r = wire_check_framing(h);
        if (r != WIRE_OK)
                return r;
        if (h->body_len > 0 && !body)
                return WIRE_E_BODY;

        switch (h->type) {
        case P2S_HELLO:
                /* The name becomes a C string on the server; an embedded NUL
                 * would let two different wire names look alike. */
                if (memchr(body + P2S_HELLO_FIXED, 0, h->body_len - P2S_HELLO_FIXED))
                        return WIRE_E_BODY;
                break;
        case P2S_WELCOME: {
                struct p2s_welcome w;
                wire_get_welcome(body, &w);
                if (w.control_mode != P2S_CONTROL_UDP && w.control_mode != P2S_CONTROL_TCP)
                        return WIRE_E_BODY;
                if (w.port == 0)
                        return WIRE_E_BODY;
                /* chunk data over UDP needs room for a header and some payload */
                if (w.control_mode == P2S_CONTROL_TCP && (w.dgram_size < P2S_MIN_DGRAM || w.dgram_size > P2S_MAX_DGRAM))
                        return WIRE_E_BODY;
                break;
        }
        case P2S_START: {
                struct p2s_start s;
                uint64_t count;
                wire_get_start(body, &s);
                if (s.chunk_size < P2S_MIN_CHUNK || s.chunk_size > P2S_MAX_CHUNK)
                        return WIRE_E_BODY;
                /* ceil without the file_size + chunk_size - 1 that overflows. */
                count = s.file_size / s.chunk_size + (s.file_size % s.chunk_size != 0);
                if (count != s.chunk_count || count > P2S_MAX_CHUNKS)
                        return WIRE_E_BODY;
                if (s.mtime_nsec >= 1000000000u || (s.mode & ~07777u))
                        return WIRE_E_BODY;
                break;
        }
        case P2S_MANIFEST:
                /* The last index must be a real one, not wrapped past
                 * P2S_NO_CHUNK; framing already bounds the count. */
                if ((uint64_t)h->chunk + h->body_len / P2S_HASH_SIZE > UINT32_MAX)
                        return WIRE_E_CHUNK;
                break;
        case P2S_LIST: {
                /* the prefix fits the body, and what is left is a name's length */
                uint32_t plen = body[P2S_LIST_FIXED - 1];
                if (plen > P2S_MAX_NAME || plen > h->body_len - P2S_LIST_FIXED ||
                    h->body_len - P2S_LIST_FIXED - plen > P2S_MAX_NAME)
                        return WIRE_E_BODY;
                if (memchr(body + P2S_LIST_FIXED, 0, h->body_len - P2S_LIST_FIXED))
                        return WIRE_E_BODY;
                break;
        }
        case P2S_LISTING: {
                size_t off = 0;
                struct wire_entry e;
                unsigned n = 0;
                int r2;
                while ((r2 = wire_listing_next(body, h->body_len, &off, &e)) == 1)
                        n++;
                if (r2 < 0 || n != get_u16(body) || n > P2S_LISTING_MAX)
                        return WIRE_E_BODY;
                break;
        }
        case P2S_PING:
                /* bare, or the gather counts of an answer */
                if (h->body_len != 0 && h->body_len != P2S_GATHER_SIZE)
                        return WIRE_E_LENGTH;
                break;
        case P2S_HAVE:
                /* every bit names a chunk a swarm can have */
                if ((uint64_t)h->chunk + (uint64_t)h->body_len * 8 > (uint64_t)P2S_MAX_CHUNKS + 7)
                        return WIRE_E_CHUNK;
                break;
        case P2S_ERR: {
                /* an ERR answering a HELLO starts with the HELLO's nonce */
                uint32_t skip = (h->flags & P2S_F_JOIN) ? P2S_NONCE_SIZE : 0;
                if (h->body_len < skip + P2S_ERR_BODY_MIN)
                        return WIRE_E_LENGTH;
                if (get_u16(body + skip) == 0)
                        return WIRE_E_BODY;
                break;
        }
        case P2S_FRAG: {
                struct p2s_frag f;
                wire_get_frag(body, &f);
                if (!frag_kind_ok(f.kind) || f.frag_size == 0 || f.chunk_len == 0 || f.chunk_len > P2S_MAX_CHUNK)
                        return WIRE_E_BODY;
                uint32_t count = f.chunk_len / f.frag_size + (f.chunk_len % f.frag_size != 0);
                if (count != f.count || f.index >= f.count)
                        return WIRE_E_BODY;
                uint32_t off = (uint32_t)f.index * f.frag_size;
                uint32_t want = f.chunk_len - off < f.frag_size ? f.chunk_len - off : f.frag_size;
                if (h->body_len - P2S_FRAG_SIZE != want)
                        return WIRE_E_LENGTH;
                break;
        }
        case P2S_FRAG_ACK:
        case P2S_FRAG_NACK:
                if (!frag_kind_ok(body[0]))
                        return WIRE_E_BODY;
                break;
        default:
                break;
        }
        return WIRE_OK;
}

int wire_decode(const uint8_t *buf, size_t len, struct p2s_msg *out)
{
        struct p2s_hdr h;
        int r;

        r = wire_decode_hdr(buf, len, &h);
        if (r != WIRE_OK)
                return r;
        /* Exact length: trailing bytes are as suspect as missing ones. */
        if (len - P2S_HDR_SIZE < h.body_len)
                return WIRE_E_SHORT;
        if (len - P2S_HDR_SIZE > h.body_len)
                return WIRE_E_LENGTH;
        r = wire_check_body(&h, buf + P2S_HDR_SIZE);
        if (r != WIRE_OK)
                return r;
        if (out) {
                out->hdr = h;
                out->body = buf + P2S_HDR_SIZE;
        }
        return WIRE_OK;
}

void wire_encode_hdr(uint8_t out[P2S_HDR_SIZE], const struct p2s_hdr *h)
{
        put_u32(out + 0, P2S_MAGIC);
        out[4] = P2S_VERSION;
        out[5] = h->type;
        put_u16(out + 6, h->flags);
        put_u32(out + 8, h->body_len);
        put_u32(out + 12, h->swarm_id);
        put_u32(out + 16, h->member_id);
        put_u64(out + 20, h->token);
        put_u32(out + 28, h->chunk);
}

size_t wire_encode(uint8_t *out, size_t cap, const struct p2s_hdr *h, const void *body, uint32_t body_len)
{
        struct p2s_hdr copy;

        if (!out || cap < P2S_HDR_SIZE || cap - P2S_HDR_SIZE < body_len)
                return 0;
        if (body_len > 0 && !body)
                return 0;
        /* The body argument is the truth: a stale h->body_len would desync
         * a stream for good. */
        copy = *h;
        copy.body_len = body_len;
        wire_encode_hdr(out, &copy);
        if (body_len > 0)
                memmove(out + P2S_HDR_SIZE, body, body_len);
        return (size_t)P2S_HDR_SIZE + body_len;
}
