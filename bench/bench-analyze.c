/*
 * bench-analyze.c: analyzer throughput per core on real text.
 *
 * For each of the en, de, ru, ja and zh chains it renders Debian's manual
 * pages in that language with `mandoc -T utf8` (packages manpages,
 * manpages-de, manpages-ru, manpages-ja, manpages-zh), strips the
 * overstrike sequences, keeps up to CORPUS_MAX bytes, and analyzes each page
 * as one document through the loader, as the indexer does: the text view,
 * the plain view, and both; "ICU break" is segmentation alone, the ceiling.  It prints MB of input per CPU second of this
 * one thread (= MB/s per core).
 *
 * Usage: bench-analyze [rounds [lang]]   (plugins from FRESHET_ANALYZER_DIR)
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "loader.h"
#include "xmalloc.h"

#define CORPUS_MAX (3u << 20)

struct page {
	size_t off, len;
};

struct corpus {
	struct buf text;
	struct page *pages;
	size_t npages;
};

/* Renders one page and appends it with overstrike (x\bx, _\bx) removed. */
static void render(struct corpus *c, const char *path)
{
	char *cmd = xasprintf("mandoc -T utf8 '%s' 2>/dev/null", path);
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return;
	size_t start = c->text.len;
	int ch;
	while ((ch = getc(f)) != EOF) {
		if (ch == '\b') {
			/* Drop the previous character (one UTF-8 sequence). */
			while (c->text.len > start &&
			       ((unsigned char)c->text.data[c->text.len - 1] & 0xC0) == 0x80)
				c->text.len--;
			if (c->text.len > start)
				c->text.len--;
			c->text.data[c->text.len] = 0;
			continue;
		}
		buf_addch(&c->text, (char)ch);
	}
	pclose(f);
	if (c->text.len > start) {
		c->pages = xrealloc(c->pages, (c->npages + 1) * sizeof *c->pages);
		c->pages[c->npages++] = (struct page){ start, c->text.len - start };
	}
}

static void load(struct corpus *c, const char *dir)
{
	char *pat = xasprintf("/usr/share/man/%s/man[1-8]/*.gz", dir);
	glob_t g;
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && c->text.len < CORPUS_MAX; i++)
			render(c, g.gl_pathv[i]);
		globfree(&g);
	}
	free(pat);
}

static int count_term(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	(void)t; (void)n; (void)s; (void)e; (void)pos;
	(*(size_t *)ctx)++;
	return 0;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Returns MB per CPU second for the given views over all pages. */
static double run(struct analyzer *an, const struct corpus *c, int rounds,
                  bool text, bool plain, size_t *terms)
{
	/* Neither view: ICU segmentation alone (every segment emitted raw). */
	unsigned seg = !text && !plain ? FRESHET_ANALYZE_SEGMENTS : 0;
	double t0 = cpu_now();
	*terms = 0;
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < c->npages; i++) {
			const char *p = c->text.data + c->pages[i].off;
			if (text)
				analyzer_run(an, FRESHET_VIEW_TEXT, 0, p, c->pages[i].len, count_term, terms);
			if (plain || seg)
				analyzer_run(an, FRESHET_VIEW_PLAIN, seg, p, c->pages[i].len, count_term, terms);
		}
	double dt = cpu_now() - t0;
	return (double)c->text.len * rounds / 1e6 / dt;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2;
	static const struct { const char *lang, *dir; } langs[] = {
		{ "en", "." }, { "de", "de" }, { "ru", "ru" }, { "ja", "ja" }, { "zh", "zh_CN" },
	};
	struct loader *ld = loader_new();
	if (loader_load_dir(ld, loader_default_dir(NULL)) != STATUS_OK) {
		fprintf(stderr, "bench-analyze: %s\n", loader_errmsg(ld));
		return 1;
	}
	printf("%-4s %-9s %6s %6s %9s %10s %10s %10s\n", "lang", "plugin", "pages", "MB",
	       "ICU break", "text MB/s", "plain MB/s", "both MB/s");
	for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
		if (argc > 2 && strcmp(argv[2], langs[i].lang) != 0)
			continue;
		struct corpus c = { BUF_INIT, NULL, 0 };
		load(&c, langs[i].dir);
		if (c.text.len == 0) {
			fprintf(stderr, "bench-analyze: no manual pages for %s\n", langs[i].lang);
			return 1;
		}
		struct analyzer *an;
		char *err = NULL;
		if (analyzer_open(ld, langs[i].lang, NULL, &an, &err) != STATUS_OK) {
			fprintf(stderr, "bench-analyze: %s\n", err);
			return 1;
		}
		size_t nt, np, nb, ns;
		/* One untimed round: ICU loads its rules and dictionaries lazily and
		 * the buffers grow to their size. */
		run(an, &c, 1, true, true, &nb);
		double sg = run(an, &c, rounds, false, false, &ns);
		double t = run(an, &c, rounds, true, false, &nt);
		double p = run(an, &c, rounds, false, true, &np);
		double b = run(an, &c, rounds, true, true, &nb);
		printf("%-4s %-9s %6zu %6.2f %9.1f %10.1f %10.1f %10.1f\n", langs[i].lang,
		       analyzer_name(an), c.npages, c.text.len / 1e6, sg, t, p, b);
		analyzer_close(an);
		buf_release(&c.text);
		free(c.pages);
	}
	loader_free(ld);
	return 0;
}
