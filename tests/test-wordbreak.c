/* SPDX-License-Identifier: MIT */
/*
 * test-wordbreak.c: ICU word segmentation, run through the generic plugin
 * (FRESHET_ANALYZE_SEGMENTS emits every segment with its byte offsets),
 * against Unicode's own conformance file
 * /usr/share/unicode/auxiliary/WordBreakTest.txt (Debian unicode-data).
 *
 * ICU's root word-break rules deliberately differ from UAX #29's default
 * rules in a few places; those lines are listed in known_differences with
 * the reason, and the test fails if one of them starts to agree (so the
 * list stays true) or any other line disagrees.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "xmalloc.h"

#define WBT "/usr/share/unicode/auxiliary/WordBreakTest.txt"

/* Line numbers (1-based, in WordBreakTest-15.0.0.txt) where ICU 72's root
 * rules differ from UAX #29, and why. */
static const struct {
	int line;
	const char *why;
} known_differences[] = {
	/* ICU keeps U+003A COLON out of MidLetter except for Swedish and
	 * Finnish, so "a:A" is three segments in the root rules, one in
	 * UAX #29 (WB6/WB7).  These are every colon-between-letters line. */
	{ 1253, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1254, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1267, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1268, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1283, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1284, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1285, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1286, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1287, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1288, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1289, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1290, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1291, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1292, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
	{ 1712, "COLON is not MidLetter in ICU's root rules (a:b breaks)" },
};

struct segs {
	size_t ends[256];
	int n;
};

static int on_seg(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct segs *g = ctx;
	(void)t;
	(void)n;
	(void)s;
	(void)pos;
	if (g->n < 256)
		g->ends[g->n++] = e;
	return 0;
}

static const char *known(int line)
{
	for (size_t i = 0; i < sizeof known_differences / sizeof known_differences[0]; i++)
		if (known_differences[i].line == line)
			return known_differences[i].why;
	return NULL;
}

Test(wordbreak, unicode_conformance_through_generic_plugin, .timeout = 60)
{
	struct loader *ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
	struct analyzer *an;
	/* A code no plugin serves: the generic plugin with ICU's root rules. */
	cr_assert_eq(analyzer_open(ld, "und", NULL, &an, NULL), STATUS_OK);
	cr_assert_str_eq(analyzer_name(an), "generic");
	FILE *f = fopen(WBT, "r");
	cr_assert(f, "cannot open " WBT " (install unicode-data)");
	char line[4096];
	int lineno = 0, cases = 0, agree = 0, known_seen = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char text[1024];
		size_t len = 0;
		size_t want[256];
		int nwant = 0;
		bool any = false;
		for (char *tok = strtok(line, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
			if (strcmp(tok, "÷") == 0) {
				if (len > 0)
					want[nwant++] = len;
			} else if (strcmp(tok, "×") == 0) {
				continue;
			} else {
				unsigned long cp = strtoul(tok, NULL, 16);
				any = true;
				if (cp < 0x80) {
					text[len++] = (char)cp;
				} else if (cp < 0x800) {
					text[len++] = (char)(0xC0 | (cp >> 6));
					text[len++] = (char)(0x80 | (cp & 0x3F));
				} else if (cp < 0x10000) {
					text[len++] = (char)(0xE0 | (cp >> 12));
					text[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
					text[len++] = (char)(0x80 | (cp & 0x3F));
				} else {
					text[len++] = (char)(0xF0 | (cp >> 18));
					text[len++] = (char)(0x80 | ((cp >> 12) & 0x3F));
					text[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
					text[len++] = (char)(0x80 | (cp & 0x3F));
				}
			}
		}
		if (!any)
			continue;
		cases++;
		struct segs g = { .n = 0 };
		cr_assert_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, FRESHET_ANALYZE_SEGMENTS,
		                          text, len, on_seg, &g), STATUS_OK);
		bool same = g.n == nwant;
		for (int i = 0; same && i < nwant; i++)
			same = g.ends[i] == want[i];
		const char *why = known(lineno);
		if (why) {
			known_seen++;
			cr_expect(!same, "line %d is listed as a known difference (%s) but now agrees",
			          lineno, why);
		} else {
			cr_expect(same, "line %d: ICU segments differently from WordBreakTest", lineno);
			if (same)
				agree++;
		}
	}
	fclose(f);
	cr_expect_gt(cases, 1800, "WordBreakTest read (%d cases)", cases);
	cr_expect_eq(known_seen, (int)(sizeof known_differences / sizeof known_differences[0]));
	cr_log_info("WordBreakTest: %d cases, %d agree, %d known differences", cases, agree,
	            known_seen);
	analyzer_close(an);
	loader_free(ld);
}
