/* SPDX-License-Identifier: MIT */
/*
 * xmalloc.c: allocators that never return NULL.  A zero-sized request gets a
 * real one-byte allocation so that callers can always free the result.
 */
#include "xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static void oom(size_t n)
{
	fprintf(stderr, "freshet: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		oom(count * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		oom(strlen(s) + 1);
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	if (!d)
		oom(n + 1);
	return d;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom(strlen(fmt));
	return s;
}

void xmalloc_keep_heap(void)
{
#ifdef __GLIBC__
	/* A request's blocks stay below 4 MiB (texts are cut at 64 KiB,
	 * snippets read 4 KiB windows); up to 16 MiB per arena is kept. */
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
#endif
}
