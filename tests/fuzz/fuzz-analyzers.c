/* SPDX-License-Identifier: MIT */
/*
 * fuzz-analyzers.c: libFuzzer target for every analyzer plugin.
 *
 * The first byte of the input picks a language (one per plugin family and
 * a few special chains: Turkish casing, German umlauts, French elision,
 * Korean bigrams, Thai dictionary, generic fallback) and the view; the rest
 * is analyzed as arbitrary bytes (invalid UTF-8 included).  Every emitted
 * term is checked against the ABI contract: non-empty, NUL-terminated, at
 * most FRESHET_ANALYZER_MAX_TERM bytes, offsets inside the input,
 * positions never decreasing.  Plugins load from FRESHET_ANALYZER_DIR.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"

static const char *const langs[] = {
	"en", "de", "fr", "tr", "ru", "el", "ar", "hi", "sv", "es",
	"zh", "ja", "ko", "th", "my", "xx",
};
#define NLANGS (sizeof langs / sizeof langs[0])

static struct loader *ld;
static struct analyzer *an[NLANGS];

struct check {
	size_t len;
	uint32_t last;
};

static int on_term(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct check *c = ctx;
	if (n == 0 || n > FRESHET_ANALYZER_MAX_TERM || t[n] != 0 || strlen(t) != n ||
	    s > e || e > c->len || pos < c->last)
		abort();
	c->last = pos;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ld) {
		ld = loader_new();
		loader_load_dir(ld, loader_default_dir(NULL));
		for (size_t i = 0; i < NLANGS; i++)
			if (analyzer_open(ld, langs[i], NULL, &an[i], NULL) != STATUS_OK)
				abort();
	}
	if (size < 1)
		return 0;
	struct analyzer *a = an[data[0] % NLANGS];
	enum freshet_view view = (data[0] / NLANGS) & 1 ? FRESHET_VIEW_PLAIN : FRESHET_VIEW_TEXT;
	/* A copy without slack, so ASan sees any read past the end. */
	size_t len = size - 1;
	char *text = malloc(len ? len : 1);
	memcpy(text, data + 1, len);
	struct check c = { len, 0 };
	enum status st = analyzer_run(a, view, 0, text, len, on_term, &c);
	if (st != STATUS_OK)
		abort();
	/* The one-pass call over the same bytes (both views). */
	struct check ct = { len, 0 }, cp = { len, 0 };
	st = analyzer_run_both(a, 0, text, len, on_term, &ct, on_term, &cp);
	if (st != STATUS_OK)
		abort();
	free(text);
	return 0;
}
