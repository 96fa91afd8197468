/* SPDX-License-Identifier: MIT */
/* HELLO cookies: deterministic for one sender and epoch, different for any
 * other, never 0, and valid for exactly the current and previous epoch. */
#include <arpa/inet.h>
#include <check.h>
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

        return s;
}

RUNNER_SUITES(cookie_suite);
