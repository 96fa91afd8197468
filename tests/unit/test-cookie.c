/* SPDX-License-Identifier: MIT */
/* HELLO cookies: deterministic for one sender and epoch, different for any
 * other, never 0, and valid for exactly the current and previous epoch.
 * The join's proofs: the swarm secret's HMAC over the documented bytes, the
 * server's verdict on a HELLO, the client's nonce check, the secret file. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include "proto/cookie.h"
#include "runner.h"

static uint8_t secret[COOKIE_SECRET_SIZE];
static uint8_t secret2[COOKIE_SECRET_SIZE];

static void setup(void) {
        for (int i = 0; i < COOKIE_SECRET_SIZE; i++) {
                secret[i] = (uint8_t)(i * 31 + 1);
                secret2[i] = secret[i];
        }
        secret2[COOKIE_SECRET_SIZE - 1] ^= 0x80;
}

static struct sockaddr_in v4(const char *ip, uint16_t port) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin_addr), 1);
        return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port) {
        struct sockaddr_in6 a;
        memset(&a, 0, sizeof(a));
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
        return a;
}

#define SA(x) ((const struct sockaddr *)&(x)), (socklen_t)sizeof(x)

START_TEST(test_deterministic) {
        struct sockaddr_in a = v4("192.0.2.1", 4000), b = v4("192.0.2.1", 4000);
        struct sockaddr_in6 c = v6("2001:db8::1", 4000), d = v6("2001:db8::1", 4000);

        ck_assert_uint_eq(cookie_make(secret, 5, SA(a)), cookie_make(secret, 5, SA(b)));
        ck_assert_uint_eq(cookie_make(secret, 5, SA(c)), cookie_make(secret, 5, SA(d)));
        /* padding and non-identity fields do not count */
        memset(b.sin_zero, 0xaa, sizeof(b.sin_zero));
        d.sin6_flowinfo = htonl(12345);
        ck_assert_uint_eq(cookie_make(secret, 5, SA(a)), cookie_make(secret, 5, SA(b)));
        ck_assert_uint_eq(cookie_make(secret, 5, SA(c)), cookie_make(secret, 5, SA(d)));
}
END_TEST

START_TEST(test_distinct) {
        struct sockaddr_in a = v4("192.0.2.1", 4000);
        struct sockaddr_in port = v4("192.0.2.1", 4001);
        struct sockaddr_in addr = v4("192.0.2.2", 4000);
        struct sockaddr_in6 a6 = v6("2001:db8::1", 4000);
        struct sockaddr_in6 port6 = v6("2001:db8::1", 4001);
        struct sockaddr_in6 addr6 = v6("2001:db8::2", 4000);
        /* the same 4 address bytes as a: family must separate them */
        struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1", 4000);
        uint64_t base = cookie_make(secret, 5, SA(a));
        uint64_t base6 = cookie_make(secret, 5, SA(a6));

        ck_assert_uint_ne(base, cookie_make(secret, 5, SA(port)));
        ck_assert_uint_ne(base, cookie_make(secret, 5, SA(addr)));
        ck_assert_uint_ne(base, cookie_make(secret2, 5, SA(a)));
        ck_assert_uint_ne(base, cookie_make(secret, 6, SA(a)));
        ck_assert_uint_ne(base, cookie_make(secret, 5ull | 1ull << 40, SA(a)));
        ck_assert_uint_ne(base, base6);
        ck_assert_uint_ne(base, cookie_make(secret, 5, SA(mapped)));
        ck_assert_uint_ne(base6, cookie_make(secret, 5, SA(port6)));
        ck_assert_uint_ne(base6, cookie_make(secret, 5, SA(addr6)));
        ck_assert_uint_ne(base6, cookie_make(secret2, 5, SA(a6)));
        ck_assert_uint_ne(base6, cookie_make(secret, 4, SA(a6)));
}
END_TEST

START_TEST(test_epochs) {
        struct sockaddr_in a = v4("198.51.100.7", 7700);
        struct sockaddr_in6 a6 = v6("2001:db8::7", 7700);
        const uint64_t E = COOKIE_EPOCH_USEC;
        const uint64_t now = 1000 * E + 123;
        uint64_t cur = cookie_make(secret, 1000, SA(a));
        uint64_t prev = cookie_make(secret, 999, SA(a));
        uint64_t old = cookie_make(secret, 998, SA(a));
        uint64_t next = cookie_make(secret, 1001, SA(a));

        ck_assert(cookie_check(secret, now, cur, SA(a)));
        ck_assert(cookie_check(secret, now, prev, SA(a)));
        ck_assert(!cookie_check(secret, now, old, SA(a)));
        ck_assert(!cookie_check(secret, now, next, SA(a)));
        /* the epoch edges: the first and last microsecond of epoch 1000 */
        ck_assert(cookie_check(secret, 1000 * E, prev, SA(a)));
        ck_assert(cookie_check(secret, 1001 * E - 1, prev, SA(a)));
        ck_assert(!cookie_check(secret, 1001 * E, prev, SA(a)));
        ck_assert(cookie_check(secret, 1001 * E, cur, SA(a)));
        /* a valid cookie for someone else, or under another secret, is not */
        struct sockaddr_in other = v4("198.51.100.8", 7700);
        ck_assert(!cookie_check(secret, now, cur, SA(other)));
        ck_assert(!cookie_check(secret2, now, cur, SA(a)));
        ck_assert(!cookie_check(secret, now, 0, SA(a)));
        /* epoch 0 has no previous one to wrap into */
        ck_assert(cookie_check(secret, 5, cookie_make(secret, 0, SA(a)), SA(a)));
        ck_assert(!cookie_check(secret, 5, cookie_make(secret, UINT64_MAX, SA(a)), SA(a)));

        uint64_t cur6 = cookie_make(secret, 1000, SA(a6));
        ck_assert(cookie_check(secret, now, cur6, SA(a6)));
        ck_assert(cookie_check(secret, now + E, cur6, SA(a6)));
        ck_assert(!cookie_check(secret, now + 2 * E, cur6, SA(a6)));
}
END_TEST

START_TEST(test_never_zero) {
        struct sockaddr_in a = v4("203.0.113.1", 1);

        /* 0 cannot be forced, so sample widely: any 0 would show up here as
         * often as any other value, i.e. never in practice unless mapped. */
        for (uint32_t i = 0; i < 20000; i++) {
                a.sin_port = htons((uint16_t)i);
                a.sin_addr.s_addr = htonl(0xcb007100u + i / 65536);
                ck_assert_uint_ne(cookie_make(secret, i, SA(a)), 0);
        }
}
END_TEST

START_TEST(test_bad_family) {
        struct sockaddr_un u;
        struct sockaddr_in a = v4("192.0.2.1", 4000);
        uint64_t c;

        memset(&u, 0, sizeof(u));
        u.sun_family = AF_UNIX;
        c = cookie_make(secret, 1, SA(u));
        ck_assert_uint_ne(c, 0);
        ck_assert(!cookie_check(secret, COOKIE_EPOCH_USEC, c, SA(u)));
        /* a truncated address is not read past its length */
        c = cookie_make(secret, 1, (const struct sockaddr *)&a, sizeof(a) - 1);
        ck_assert_uint_ne(c, 0);
        ck_assert(!cookie_check(secret, COOKIE_EPOCH_USEC, c, (const struct sockaddr *)&a, sizeof(a) - 1));
        ck_assert(!cookie_check(secret, COOKIE_EPOCH_USEC, c, NULL, 0));
}
END_TEST

/* ---- the join: proof of the swarm secret, the verdict, the nonce ---------- */

static struct swarm_secret ss_a, ss_b;

static void set_secret(struct swarm_secret *s, const char *k)
{
        s->len = strlen(k);
        memcpy(s->key, k, s->len);
}

/* A decoded HELLO in pkt for name, with cookie and proof (NULL: zeros). */
static struct p2s_msg make_hello(uint8_t *pkt, size_t cap, uint64_t cookie, const uint8_t *nonce,
                                 const uint8_t *proof, const char *name)
{
        uint8_t body[P2S_HELLO_FIXED + P2S_MAX_NAME];
        size_t bl = wire_put_hello(body, sizeof(body), nonce, proof, name, strlen(name));
        struct p2s_hdr h = { .type = P2S_HELLO, .token = cookie, .chunk = P2S_NO_CHUNK };
        size_t n = wire_encode(pkt, cap, &h, body, (uint32_t)bl);
        struct p2s_msg m;
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        return m;
}

/* HMAC-SHA256 of the documented bytes, checked against an independent
 * computation (RFC 4231 test case 2 key and the p2s.7 layout). */
START_TEST(test_proof_vector) {
        static const uint8_t nonce[P2S_NONCE_SIZE] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
        uint8_t p1[P2S_PROOF_SIZE], p2[P2S_PROOF_SIZE];
        set_secret(&ss_a, "Jefe");
        join_proof(&ss_a, 0x0102030405060708ull, nonce, "disk.img", 8, p1);
        /* python3 -c 'import hmac,hashlib;print(hmac.new(b"Jefe", b"p2s-join-1"+bytes(range(1,9))
         *   +bytes(range(16))+b"disk.img", hashlib.sha256).hexdigest())' */
        static const char want[] = "18147ac6c1ba2d9768986c4ef8778a689d2412d0b3df496984bae07b7a2edc64";
        char hex[2 * P2S_PROOF_SIZE + 1];
        for (int i = 0; i < P2S_PROOF_SIZE; i++)
                snprintf(hex + 2 * i, 3, "%02x", p1[i]);
        ck_assert_str_eq(hex, want);
        /* every input changes it */
        join_proof(&ss_a, 0x0102030405060709ull, nonce, "disk.img", 8, p2);
        ck_assert(memcmp(p1, p2, sizeof(p1)));
        join_proof(&ss_a, 0x0102030405060708ull, nonce, "disk.imh", 8, p2);
        ck_assert(memcmp(p1, p2, sizeof(p1)));
        set_secret(&ss_b, "Jefg");
        join_proof(&ss_b, 0x0102030405060708ull, nonce, "disk.img", 8, p2);
        ck_assert(memcmp(p1, p2, sizeof(p1)));
}
END_TEST

START_TEST(test_verdict) {
        struct sockaddr_in a = v4("192.0.2.7", 5000), b = v4("192.0.2.8", 5000);
        uint8_t nonce[P2S_NONCE_SIZE], pkt[512], proof[P2S_PROOF_SIZE], out[512];
        uint64_t now = 10 * COOKIE_EPOCH_USEC + 5;
        struct wire_hello wh;
        memset(nonce, 0x3c, sizeof(nonce));
        set_secret(&ss_a, "right");
        set_secret(&ss_b, "wrong");

        /* no cookie, or someone else's: a COOKIE that echoes the nonce and is no larger */
        struct p2s_msg m = make_hello(pkt, sizeof(pkt), 0, nonce, NULL, "f");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_SEND_COOKIE);
        size_t n = join_cookie_reply(out, sizeof(out), secret, now, &wh, SA(a));
        ck_assert_uint_le(n, P2S_HDR_SIZE + m.hdr.body_len);
        struct p2s_msg c;
        ck_assert_int_eq(wire_decode(out, n, &c), WIRE_OK);
        ck_assert_int_eq(c.hdr.type, P2S_COOKIE);
        ck_assert(join_reply_is_ours(&c, nonce));
        uint64_t cookie = c.hdr.token;
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, NULL, "f");
        ck_assert_int_eq(join_check_hello(secret, NULL, now, &m, SA(b), &wh), JOIN_SEND_COOKIE);

        /* a proven address: accepted without a server secret, whatever the proof */
        ck_assert_int_eq(join_check_hello(secret, NULL, now, &m, SA(a), &wh), JOIN_ACCEPT);
        memset(proof, 0x77, sizeof(proof));
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, proof, "f");
        ck_assert_int_eq(join_check_hello(secret, NULL, now, &m, SA(a), &wh), JOIN_ACCEPT);
        /* with one: none, wrong, right */
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, NULL, "f");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_NEED_SECRET);
        join_proof(&ss_b, cookie, nonce, "f", 1, proof);
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, proof, "f");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_BAD_SECRET);
        join_proof(&ss_a, cookie, nonce, "f", 1, proof);
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, proof, "f");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_ACCEPT);
        /* a proof is bound to its name and nonce: replayed for another, it fails */
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, proof, "g");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_BAD_SECRET);
        nonce[0] ^= 1;
        m = make_hello(pkt, sizeof(pkt), cookie, nonce, proof, "f");
        ck_assert_int_eq(join_check_hello(secret, &ss_a, now, &m, SA(a), &wh), JOIN_BAD_SECRET);
}
END_TEST

START_TEST(test_reply_nonce) {
        uint8_t nonce[P2S_NONCE_SIZE], other[P2S_NONCE_SIZE], pkt[256], body[P2S_ERR_BODY_MIN + P2S_MAX_REASON];
        struct p2s_msg m;
        memset(nonce, 9, sizeof(nonce));
        memcpy(other, nonce, sizeof(other));
        other[P2S_NONCE_SIZE - 1] ^= 0x80;

        struct p2s_hdr h = { .type = P2S_COOKIE, .token = 5, .chunk = P2S_NO_CHUNK };
        size_t n = wire_encode(pkt, sizeof(pkt), &h, other, P2S_COOKIE_SIZE);
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        ck_assert(!join_reply_is_ours(&m, nonce));
        ck_assert(join_reply_is_ours(&m, other));

        struct p2s_welcome w = { .control_mode = P2S_CONTROL_UDP, .port = 9 };
        memcpy(w.nonce, other, sizeof(other));
        wire_put_welcome(body, &w);
        h.type = P2S_WELCOME;
        n = wire_encode(pkt, sizeof(pkt), &h, body, P2S_WELCOME_SIZE);
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        ck_assert(!join_reply_is_ours(&m, nonce));

        /* an ERR without P2S_F_JOIN answers no HELLO, whatever its bytes */
        size_t bl = wire_put_join_err(body, sizeof(body), nonce, P2S_ERR_NOFILE, "x");
        h.type = P2S_ERR;
        h.flags = P2S_F_FATAL;
        n = wire_encode(pkt, sizeof(pkt), &h, body, (uint32_t)bl);
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        ck_assert(!join_reply_is_ours(&m, nonce));
        h.flags |= P2S_F_JOIN;
        n = wire_encode(pkt, sizeof(pkt), &h, body, (uint32_t)bl);
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        ck_assert(join_reply_is_ours(&m, nonce));
        ck_assert(!join_reply_is_ours(&m, other));
        /* nor does any other type */
        h = (struct p2s_hdr){ .type = P2S_DONE, .chunk = P2S_NO_CHUNK };
        n = wire_encode(pkt, sizeof(pkt), &h, NULL, 0);
        ck_assert_int_eq(wire_decode(pkt, n, &m), WIRE_OK);
        ck_assert(!join_reply_is_ours(&m, nonce));
}
END_TEST

static char tmpdir[64];

static const char *tmp_file(const char *name, const char *text, mode_t mode)
{
        static char path[128];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        ck_assert_int_eq(chmod(path, mode), 0);
        return path;
}

static void tmp_setup(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/p2s-test-cookie.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_secret_file) {
        struct swarm_secret s;
        char err[256];

        ck_assert_int_eq(swarm_secret_load(tmp_file("ok", "hunter2\n", 0600), &s, err, sizeof(err)), 0);
        ck_assert_uint_eq(s.len, 7);
        ck_assert_mem_eq(s.key, "hunter2", 7);
        ck_assert_int_eq(swarm_secret_load(tmp_file("crlf", "k\r\n", 0400), &s, err, sizeof(err)), 0);
        ck_assert_uint_eq(s.len, 1);
        /* only one newline goes: the rest is the key's */
        ck_assert_int_eq(swarm_secret_load(tmp_file("two", "k\n\n", 0600), &s, err, sizeof(err)), 0);
        ck_assert_uint_eq(s.len, 2);

        ck_assert_int_eq(swarm_secret_load(tmp_file("grp", "k", 0640), &s, err, sizeof(err)), -EPERM);
        ck_assert_msg(strstr(err, "readable or writable by group or others"), "%s", err);
        ck_assert_uint_eq(s.len, 0);
        ck_assert_int_eq(swarm_secret_load(tmp_file("oth", "k", 0602), &s, err, sizeof(err)), -EPERM);
        ck_assert_int_eq(swarm_secret_load(tmp_file("empty", "", 0600), &s, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "empty"), "%s", err);
        ck_assert_int_eq(swarm_secret_load(tmp_file("nl", "\n", 0600), &s, err, sizeof(err)), -EINVAL);
        char big[SWARM_SECRET_MAX + 2];
        memset(big, 'k', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ck_assert_int_eq(swarm_secret_load(tmp_file("big", big, 0600), &s, err, sizeof(err)), -EFBIG);
        big[SWARM_SECRET_MAX] = 0;
        ck_assert_int_eq(swarm_secret_load(tmp_file("max", big, 0600), &s, err, sizeof(err)), 0);
        ck_assert_uint_eq(s.len, SWARM_SECRET_MAX);
        ck_assert_int_eq(swarm_secret_load(tmpdir, &s, err, sizeof(err)), -EINVAL);
        ck_assert_msg(strstr(err, "not a regular file"), "%s", err);
        char missing[128];
        snprintf(missing, sizeof(missing), "%s/none", tmpdir);
        ck_assert_int_eq(swarm_secret_load(missing, &s, err, sizeof(err)), -ENOENT);
}
END_TEST

/* The HELLO with the cookie is retried after 4 x the HELLO/COOKIE round
 * trip, within [10 ms, 50 ms]; after a re-sent first HELLO there is no
 * sample, and the answer ends the backoff: 50 ms, not the 2 s it may have
 * doubled to. */
START_TEST(test_hello_rto) {
        ck_assert_uint_eq(join_hello_rto_after_cookie(false, 1000), JOIN_HELLO_RTO_MIN_US);
        ck_assert_uint_eq(join_hello_rto_after_cookie(false, 5000), 20000);
        ck_assert_uint_eq(join_hello_rto_after_cookie(false, 30000), JOIN_HELLO_RTO_US);
        ck_assert_uint_eq(join_hello_rto_after_cookie(true, 0), JOIN_HELLO_RTO_US);
        ck_assert_uint_eq(join_hello_rto_after_cookie(true, 1000), JOIN_HELLO_RTO_US);
}
END_TEST

static Suite *cookie_suite(void) {
        Suite *s = suite_create("cookie");
        TCase *tc;

        tc = tcase_create("make");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_deterministic);
        tcase_add_test(tc, test_distinct);
        tcase_add_test(tc, test_never_zero);
        suite_add_tcase(s, tc);

        tc = tcase_create("check");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_epochs);
        tcase_add_test(tc, test_bad_family);
        suite_add_tcase(s, tc);

        tc = tcase_create("join");
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_proof_vector);
        tcase_add_test(tc, test_verdict);
        tcase_add_test(tc, test_reply_nonce);
        tcase_add_test(tc, test_hello_rto);
        suite_add_tcase(s, tc);

        tc = tcase_create("secret-file");
        tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
        tcase_add_test(tc, test_secret_file);
        suite_add_tcase(s, tc);

        return s;
}

RUNNER_SUITES(cookie_suite);
