/* SPDX-License-Identifier: MIT */
/*
 * fuzz-extract.c: libFuzzer target for the HTML extractor.
 *
 * Build: configure --enable-fuzz CC=clang CXX=clang++ && make
 * tests/fuzz/fuzz-extract; run: tests/fuzz/fuzz-extract -max_total_time=600
 * CORPUS_DIR (seed it with tests/fixtures/html).  Besides the sanitizers'
 * findings, the target aborts if any output field is not valid UTF-8,
 * holds a NUL, starts or ends with a space, or passes the size cap.
 */
#include "extract.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const char *s, size_t cap)
{
	size_t n = strlen(s);
	if (n > cap)
		abort();
	if (n && (s[0] == ' ' || s[n - 1] == ' '))
		abort();
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
			 : (c & 0xF8) == 0xF0 ? 4 : 0;
		if (!k || i + k > n)
			abort();
		uint32_t cp = k == 1 ? c : (uint32_t)(c & (0x7F >> k));
		for (size_t j = 1; j < k; j++) {
			if ((u[i + j] & 0xC0) != 0x80)
				abort();
			cp = (cp << 6) | (u[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			abort();
		i += k;
	}
}

static void check_list(const struct extract_list *l, size_t cap)
{
	for (size_t i = 0; i < l->n; i++) {
		check(l->v[i], cap);
		if (!l->v[i][0])
			abort(); /* empty entries are never kept */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct extract *x;
	const size_t cap = 4096;
	if (!x) {
		struct extract_limits lim = { .max_output = cap, .max_depth = 32 };
		x = extract_new(&lim);
	}
	struct extract_doc d;
	if (extract_html(x, (const char *)data, size, &d) == 0) {
		check(d.text, cap);
		if (strlen(d.text) != d.text_len)
			abort();
		check(d.opening_text, cap);
		check_list(&d.heading, cap);
		check_list(&d.auxiliary_text, cap);
	}
	extract_doc_release(&d);
	char *s = extract_strip_html((const char *)data, size);
	check(s, 65536);
	free(s);
	return 0;
}
