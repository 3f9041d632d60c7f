/* SPDX-License-Identifier: MIT */
/*
 * bench-shard.h: what bench-shard.c (C, through the shard store and the
 * shim) and bench-shard-direct.cc (the same writes in C++ straight on
 * Xapian) share: the generated documents.
 */
#ifndef FRESHET_BENCH_SHARD_H
#define FRESHET_BENCH_SHARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_tok {
	const char *s;    /* lowercased word (not NUL-terminated) */
	uint32_t len;
	uint32_t stem_len; /* a crude stem: the word without a final "s" */
};

struct bench_doc {
	uint64_t page, rev;
	const struct bench_tok *title;
	size_t ntitle;
	const struct bench_tok *body;
	size_t nbody;
	const char *text;  /* the original text of the body span */
	size_t text_len;
	char data[8192];   /* a JSON data string as the store would write */
	size_t data_len;
};

/* Fills d with the document for (page, rev): about 800 consecutive words
 * of the corpus from an offset that depends on both. */
void bench_make_doc(struct bench_doc *d, uint64_t page, uint64_t rev);

/* Process CPU time in seconds. */
double bench_cpu_now(void);

/* The same writes done directly on Xapian in C++; each returns wall
 * seconds (and sets *cpu to CPU seconds) of the writes and commits, not
 * counting open and close, or a negative number after printing an error. */
double direct_build(const char *path, uint64_t first_page, uint64_t docs,
		    unsigned batch, double *cpu);
/* Builds (and discards) the Xapian document of each of docs documents in
 * memory, as the direct writes do; returns CPU seconds. */
double direct_build_docs(uint64_t first_page, uint64_t docs);
double direct_replace(const char *path, const uint64_t *pages, size_t n,
		      uint64_t rev, unsigned batch, double *cpu);

#ifdef __cplusplus
}
#endif

#endif
