/* thello.c - see thello.h. */
#include <string.h>

#include "thello.h"

struct tb {
	uint8_t *b;
	size_t n, cap;
	int over;
};

static void put(struct tb *t, const void *p, size_t n)
{
	if (t->n + n > t->cap) {
		t->over = 1;
		return;
	}
	if (n)
		memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void put8(struct tb *t, size_t v)
{
	uint8_t b = (uint8_t)v;

	put(t, &b, 1);
}

static void put16(struct tb *t, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(t, b, 2);
}

static void put_ext(struct tb *t, unsigned type, const void *p, size_t n)
{
	put16(t, type);
	put16(t, n);
	put(t, p, n);
}

static void put_sni(struct tb *t, const char *name)
{
	uint8_t e[300];
	struct tb x = {e, 0, sizeof(e), 0};
	size_t n = strlen(name);

	put16(&x, n + 3);
	put8(&x, 0);
	put16(&x, n);
	put(&x, name, n);
	put_ext(t, 0, e, x.n);
}

static void put_alpn(struct tb *t, const char *list)
{
	uint8_t e[300];
	struct tb x = {e, 2, sizeof(e), 0};
	const char *p = list, *c;
	size_t n;

	while (*p) {
		c = strchr(p, ',');
		n = c ? (size_t)(c - p) : strlen(p);
		put8(&x, n);
		put(&x, p, n);
		p += n + (c ? 1 : 0);
	}
	e[0] = (uint8_t)((x.n - 2) >> 8);
	e[1] = (uint8_t)(x.n - 2);
	put_ext(t, 16, e, x.n);
}

size_t t_hello_msg(const char *sni, const char *alpn, size_t pad, uint8_t *buf,
                   size_t cap)
{
	static const uint8_t zeros[32768];
	struct tb m = {buf, 4, cap, cap < 4};
	size_t ext0, body;

	put16(&m, 0x0303);
	put(&m, zeros, 32);
	put8(&m, 32); /* session id */
	put(&m, zeros, 32);
	put16(&m, 4); /* cipher suites: GREASE, TLS_AES_128_GCM_SHA256 */
	put16(&m, 0x2a2a);
	put16(&m, 0x1301);
	put8(&m, 1);
	put8(&m, 0);
	ext0 = m.n;
	put16(&m, 0);
	put_ext(&m, 0x0a0a, NULL, 0); /* GREASE */
	if (sni)
		put_sni(&m, sni);
	put_ext(&m, 0x3a3a, "\0", 1); /* GREASE with a byte */
	if (alpn)
		put_alpn(&m, alpn);
	if (pad)
		put_ext(&m, 21, zeros, pad < sizeof(zeros) ? pad : 0);
	if (m.over)
		return 0;
	buf[ext0] = (uint8_t)((m.n - ext0 - 2) >> 8);
	buf[ext0 + 1] = (uint8_t)(m.n - ext0 - 2);
	body = m.n - 4;
	buf[0] = 1;
	buf[1] = (uint8_t)(body >> 16);
	buf[2] = (uint8_t)(body >> 8);
	buf[3] = (uint8_t)body;
	return m.n;
}

size_t t_hello_records(const uint8_t *msg, size_t n, size_t rec, uint8_t *buf,
                       size_t cap)
{
	struct tb out = {buf, 0, cap, 0};
	size_t off, k;

	for (off = 0; off < n; off += k) {
		k = n - off < rec ? n - off : rec;
		put8(&out, 22);
		put16(&out, 0x0301);
		put16(&out, k);
		put(&out, msg + off, k);
	}
	return out.over ? 0 : out.n;
}

size_t t_hello(const char *sni, const char *alpn, size_t pad, size_t rec,
               uint8_t *buf, size_t cap)
{
	static uint8_t msg[65536];
	size_t n = t_hello_msg(sni, alpn, pad, msg, sizeof(msg));

	return n ? t_hello_records(msg, n, rec, buf, cap) : 0;
}
