/* compat.h - small helpers shared by every library file. */
#ifndef ZC_COMPAT_H
#define ZC_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include "zcrelay.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define countof(a)  (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member)                                        \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#define ZC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ZC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* An intrusive doubly-linked list (a head is a node linked to itself). */
struct zc_list {
	struct zc_list *prev, *next;
};

static inline void zc__list_init(struct zc_list *l)
{
	l->prev = l->next = l;
}

static inline int zc__list_empty(const struct zc_list *l)
{
	return l->next == l;
}

/* Appends n at the tail of head. */
static inline void zc__list_add_tail(struct zc_list *head, struct zc_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

/* Unlinks n and makes it an empty list, so a second del is harmless. */
static inline void zc__list_del(struct zc_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	zc__list_init(n);
}

/* Returns -errno for the last failed libc call, never 0. */
static inline int zc__neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
