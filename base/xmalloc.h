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

/* Keeps freed memory in the process for reuse (glibc's malloc), for a
 * server answering many requests from several threads: by default each
 * thread's arena gives its free top back to the kernel as soon as it
 * passes 128 KiB and large blocks are mmap'ed afresh, so every request
 * pays page faults for memory the previous one just released.  Call once,
 * before threads start.  A no-op elsewhere than glibc. */
void xmalloc_keep_heap(void);

#endif
