/* SPDX-License-Identifier: MIT */
/*
 * xmalloc.h: allocation for the programs.  Out of memory is not a condition a
 * worker can recover from, so these abort with a message instead of returning
 * NULL.  Code behind an ABI (the Xapian shim, analyzer plugins) must not use
 * them: it returns STATUS_NOMEM instead.
 */
#ifndef FRESHET_XMALLOC_H
#define FRESHET_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
