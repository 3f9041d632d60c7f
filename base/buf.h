/* SPDX-License-Identifier: MIT */
/*
 * buf.h: a growable byte buffer (after git's strbuf).
 *
 * Invariants: b->data is never NULL and is always NUL-terminated at
 * b->data[b->len], so a buf can be handed to any function that wants a C
 * string; b->len never counts the terminator.  A buf initialised with
 * BUF_INIT or buf_init() owns nothing until the first append.  Ownership of
 * the bytes leaves the buf only through buf_detach().  Growth aborts on out
 * of memory (xmalloc), so this is for programs, not for plugins.
 */
#ifndef FRESHET_BUF_H
#define FRESHET_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap; /* 0 while data points at the shared empty string */
};

extern char buf_empty[];
#define BUF_INIT { buf_empty, 0, 0 }

void buf_init(struct buf *b);
/* Frees the bytes and leaves b empty and reusable. */
void buf_release(struct buf *b);
/* Empties b, keeping its allocation. */
void buf_reset(struct buf *b);
/* Makes room for at least extra more bytes. */
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Appends len bytes of data for a terminal or a log line: every control
 * character (bytes 0x00-0x1f and 0x7f, and C1 controls U+0080-U+009F in
 * UTF-8) is written as \xNN, one per byte, so that text from outside
 * (a wiki's error message, an event payload) cannot move the cursor,
 * change colours or forge lines.  Other bytes, valid UTF-8 or not, are
 * copied unchanged. */
void buf_add_escaped(struct buf *b, const void *data, size_t len);
/* Returns the bytes (NUL-terminated, caller frees) and leaves b empty. */
char *buf_detach(struct buf *b, size_t *len);

#endif
