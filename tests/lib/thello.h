/*
 * thello.h - synthetic TLS ClientHellos for the sniffer and routing
 * tests: GREASE values, an optional server name and ALPN list, a
 * padding extension to make them big, cut into records of a given size.
 */
#ifndef ZC_TEST_THELLO_H
#define ZC_TEST_THELLO_H

#include <stddef.h>
#include <stdint.h>

/*
 * t_hello - a ClientHello with sni and alpn ("h2,http/1.1"; NULL: no
 * such extension) and pad bytes of padding, as TLS records of at most
 * rec payload bytes, into buf (cap bytes). Returns its length, or 0 if
 * it does not fit.
 */
size_t t_hello(const char *sni, const char *alpn, size_t pad, size_t rec,
               uint8_t *buf, size_t cap);

/* The handshake message alone (no record headers); as t_hello. */
size_t t_hello_msg(const char *sni, const char *alpn, size_t pad, uint8_t *buf,
                   size_t cap);

/* msg[0..n) as TLS records of at most rec payload bytes into buf. */
size_t t_hello_records(const uint8_t *msg, size_t n, size_t rec, uint8_t *buf,
                       size_t cap);

#endif
