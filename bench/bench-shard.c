/* SPDX-License-Identifier: MIT */
/*
 * bench-shard.c: how fast pages can be written into one shard, and what the
 * shim costs.
 *
 * Documents are made of real text (the licences in /usr/share/common-licenses
 * and some manual pages): about 800 positional words (~5 KB) per page, with
 * title terms, crude stems, boolean terms, four values and JSON data, as the
 * pipeline writes them.  Three ways of writing the same pages are timed:
 *
 *   shard   through the shard store (rev guard, no-op fingerprint, JSON data,
 *           transaction, fencing metadata): what freshet-worker does;
 *   shim    through the C shim only (xdoc/xdb calls, no store logic);
 *   direct  the same calls in C++ straight on Xapian (bench-shard-direct.cc).
 *
 * shim vs direct is the shim's overhead; shard vs shim is the store's.
 *
 * Usage: bench-shard [-n BASE_DOCS] [-m BUILD_DOCS] [-r SCALE] [-d DIR] [-k]
 *   -n  documents in the shard the replacements go into (default 100000)
 *   -m  documents of the from-scratch build compared per method (default
 *       min(n, 10000))
 *   -r  scale of the replacement counts: 20*r commits of 1 document, 300*r
 *       documents in commits of 100, 2000*r in commits of 1000 (default 1)
 *   -d  scratch directory (default a new one under $TMPDIR or /tmp)
 *   -k  keep the scratch directory
 */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench-shard.h"
#include "buf.h"
#include "shard.h"
#include "xapian-shim.h"
#include "xmalloc.h"

#define BODY_WORDS 800
#define TITLE_WORDS 3

static struct buf corpus_text = BUF_INIT;
static struct buf corpus_lower = BUF_INIT;
static struct bench_tok *toks;
static size_t ntoks;
static size_t *tok_off; /* offset of each token in corpus_text */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double bench_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&corpus_text, tmp, n);
	fclose(f);
	buf_addch(&corpus_text, '\n');
}

static void add_command(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		return;
	char tmp[65536];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&corpus_text, tmp, n);
	pclose(f);
}

/* Loads the corpus and splits it into lowercased ASCII words. */
static void load_corpus(void)
{
	DIR *d = opendir("/usr/share/common-licenses");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char *p = xasprintf("/usr/share/common-licenses/%s", e->d_name);
			add_file(p);
			free(p);
		}
		closedir(d);
	}
	/* Manual pages widen the vocabulary (a wiki's is large). */
	add_command("ls /usr/share/man/man1/*.gz 2>/dev/null | head -400 | "
		    "xargs -r zcat 2>/dev/null");
	buf_add(&corpus_lower, corpus_text.data, corpus_text.len);
	for (size_t i = 0; i < corpus_lower.len; i++)
		corpus_lower.data[i] = (char)tolower((unsigned char)corpus_lower.data[i]);
	size_t cap = 1 << 16;
	toks = xmalloc(cap * sizeof *toks);
	tok_off = xmalloc(cap * sizeof *tok_off);
	const char *s = corpus_lower.data;
	for (size_t i = 0; i < corpus_lower.len;) {
		if (!isalnum((unsigned char)s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < corpus_lower.len && isalnum((unsigned char)s[j]) && j - i < 40)
			j++;
		if (ntoks == cap) {
			cap *= 2;
			toks = xrealloc(toks, cap * sizeof *toks);
			tok_off = xrealloc(tok_off, cap * sizeof *tok_off);
		}
		uint32_t len = (uint32_t)(j - i);
		toks[ntoks] = (struct bench_tok){ s + i, len,
			len > 3 && s[j - 1] == 's' ? len - 1 : len };
		tok_off[ntoks] = i;
		ntoks++;
		i = j;
	}
	if (ntoks < BODY_WORDS * 4) {
		fprintf(stderr, "bench-shard: corpus too small (%zu words)\n", ntoks);
		exit(1);
	}
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void bench_make_doc(struct bench_doc *d, uint64_t page, uint64_t rev)
{
	size_t start = mix(page * 1000003 + rev) % (ntoks - BODY_WORDS - 1);
	size_t tstart = mix(page) % (ntoks - TITLE_WORDS - 1);
	d->page = page;
	d->rev = rev;
	d->title = toks + tstart;
	d->ntitle = TITLE_WORDS;
	d->body = toks + start;
	d->nbody = BODY_WORDS;
	size_t a = tok_off[start];
	size_t b = tok_off[start + BODY_WORDS - 1] + toks[start + BODY_WORDS - 1].len;
	d->text = corpus_text.data + a;
	d->text_len = b - a;
	/* Data of about the store's size (the text is the bulk of it). */
	size_t tl = d->text_len < 6000 ? d->text_len : 6000;
	int n = snprintf(d->data, sizeof d->data,
			 "{\"page_id\":%" PRIu64 ",\"title\":\"Page %" PRIu64 "\","
			 "\"namespace\":0,\"language\":\"en\",\"rev_id\":%" PRIu64
			 ",\"text\":\"%.*s\"}", page, page, rev, (int)tl, d->text);
	d->data_len = (size_t)n < sizeof d->data ? (size_t)n : sizeof d->data - 1;
}

/* ------------------------------------------------------------ the store */

static struct shard_doc *store_doc(const struct bench_doc *b)
{
	struct shard_doc *d = shard_doc_new(b->page);
	char title[256];
	int tl = snprintf(title, sizeof title, "%.*s %.*s %.*s",
			  (int)b->title[0].len, b->title[0].s,
			  (int)b->title[1].len, b->title[1].s,
			  (int)b->title[2].len, b->title[2].s);
	(void)tl;
	shard_doc_set_title(d, title);
	shard_doc_set_rev(d, b->rev, 1700000000 + (int64_t)b->rev);
	shard_doc_set_namespace(d, 0);
	shard_doc_set_language(d, "en");
	shard_doc_set_url(d, "https://wiki.example/wiki/Page");
	shard_doc_add_category(d, "Bench");
	shard_doc_set_text(d, b->text, b->text_len);
	for (size_t i = 0; i < b->ntitle; i++) {
		shard_doc_add_posting(d, SHARD_PREFIX_TITLE, b->title[i].s,
				      b->title[i].len, (uint32_t)i + 1);
		shard_doc_add_term(d, SHARD_PREFIX_TITLE_STEM, b->title[i].s,
				   b->title[i].stem_len);
	}
	for (size_t i = 0; i < b->nbody; i++) {
		shard_doc_add_posting(d, SHARD_PREFIX_BODY, b->body[i].s,
				      b->body[i].len, (uint32_t)i + 1);
		shard_doc_add_term(d, SHARD_PREFIX_STEM, b->body[i].s,
				   b->body[i].stem_len);
	}
	return d;
}

static void die_store(struct shard *sh, const char *what)
{
	fprintf(stderr, "bench-shard: %s: %s\n", what, shard_errmsg(sh));
	exit(1);
}

static double store_write(const char *path, const uint64_t *pages, size_t n, double *cpu,
			  uint64_t first_page, uint64_t rev, unsigned batch, bool create)
{
	struct shard *sh = shard_new();
	if (shard_open(sh, path, create ? SHARD_CREATE : 0) != STATUS_OK)
		die_store(sh, "open");
	struct bench_doc *b = xmalloc(sizeof *b);
	double t0 = now(), c0 = bench_cpu_now();
	for (size_t i = 0; i < n; i++) {
		uint64_t page = pages ? pages[i] : first_page + i;
		bench_make_doc(b, page, rev);
		struct shard_doc *d = store_doc(b);
		enum status st = shard_replace(sh, d);
		shard_doc_free(d);
		/* A page drawn twice in one run is a no-op the second time. */
		if (st != STATUS_OK && st != STATUS_NOOP)
			die_store(sh, "replace");
		if ((i + 1) % batch == 0 || i + 1 == n) {
			char pos[32];
			snprintf(pos, sizeof pos, "%zu-0", i);
			shard_set_position(sh, "bench", pos);
			if (shard_commit(sh, 1) != STATUS_OK)
				die_store(sh, "commit");
		}
	}
	double t = now() - t0;
	*cpu = bench_cpu_now() - c0;
	free(b);
	shard_free(sh);
	return t;
}

/* ------------------------------------------------------------- the shim */

static void die_xdb(struct xdb *db, const char *what)
{
	fprintf(stderr, "bench-shard: %s: %s\n", what, xdb_errmsg(db));
	exit(1);
}

/* The same document the direct C++ code builds, through the shim. */
static struct xdoc *shim_doc(const struct bench_doc *b)
{
	struct xdoc *x = xdoc_new();
	char q[32];
	int ql = snprintf(q, sizeof q, "Q%" PRIu64, b->page);
	xdoc_add_term(x, NULL, q, (size_t)ql, 0);
	for (size_t i = 0; i < b->ntitle; i++) {
		xdoc_add_posting(x, "S", b->title[i].s, b->title[i].len, (uint32_t)i + 1, 1);
		xdoc_add_term(x, "ZS", b->title[i].s, b->title[i].stem_len, 1);
	}
	for (size_t i = 0; i < b->nbody; i++) {
		xdoc_add_posting(x, "", b->body[i].s, b->body[i].len, (uint32_t)i + 1, 1);
		xdoc_add_term(x, "Z", b->body[i].s, b->body[i].stem_len, 1);
	}
	xdoc_add_term(x, NULL, "XNS0", 4, 0);
	xdoc_add_term(x, NULL, "Len", 3, 0);
	xdoc_add_term(x, NULL, "XCbench", 7, 0);
	xdoc_set_value_number(x, 0, (double)b->rev);
	xdoc_set_value_number(x, 1, 1700000000.0 + (double)b->rev);
	xdoc_set_value_number(x, 2, 0);
	char fp[17];
	snprintf(fp, sizeof fp, "%016" PRIx64, mix(b->page ^ b->rev));
	xdoc_set_value(x, 3, fp, 16);
	xdoc_set_data(x, b->data, b->data_len);
	return x;
}

static double shim_write(const char *path, const uint64_t *pages, size_t n, double *cpu,
			 uint64_t first_page, uint64_t rev, unsigned batch, bool create)
{
	struct xdb *db = xdb_new();
	if (xdb_open_write(db, path, create ? XDB_CREATE : 0) != STATUS_OK)
		die_xdb(db, "open");
	struct bench_doc *b = xmalloc(sizeof *b);
	double t0 = now(), c0 = bench_cpu_now();
	for (size_t i = 0; i < n; i++) {
		uint64_t page = pages ? pages[i] : first_page + i;
		bench_make_doc(b, page, rev);
		struct xdoc *x = shim_doc(b);
		char q[32];
		snprintf(q, sizeof q, "Q%" PRIu64, page);
		if (xdb_replace(db, q, x) != STATUS_OK)
			die_xdb(db, "replace");
		xdoc_free(x);
		if ((i + 1) % batch == 0 || i + 1 == n) {
			char pos[32];
			snprintf(pos, sizeof pos, "%zu-0", i);
			xdb_set_metadata(db, "freshet.position.bench", pos);
			if (xdb_commit(db) != STATUS_OK)
				die_xdb(db, "commit");
		}
	}
	double t = now() - t0;
	*cpu = bench_cpu_now() - c0;
	free(b);
	xdb_free(db);
	return t;
}

/* Builds shim documents in memory only; returns CPU seconds. */
static double shim_build_docs(uint64_t first_page, uint64_t docs)
{
	struct bench_doc *b = xmalloc(sizeof *b);
	double c0 = bench_cpu_now();
	for (uint64_t i = 0; i < docs; i++) {
		bench_make_doc(b, first_page + i, 1);
		xdoc_free(shim_doc(b));
	}
	double c = bench_cpu_now() - c0;
	free(b);
	return c;
}

/* ------------------------------------------------------------- the rest */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint64_t dir_bytes(const char *path)
{
	uint64_t total = 0;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *f = xasprintf("%s/%s", path, e->d_name);
		struct stat sb;
		if (stat(f, &sb) == 0 && S_ISREG(sb.st_mode))
			total += (uint64_t)sb.st_size;
		free(f);
	}
	closedir(d);
	return total;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-shard [-n BASE_DOCS] [-m BUILD_DOCS] [-r SCALE] "
			"[-d DIR] [-k]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t base = 100000, build = 0;
	unsigned scale = 1;
	const char *dir = NULL;
	bool keep = false;
	int c;
	while ((c = getopt(argc, argv, "n:m:r:d:k")) != -1) {
		switch (c) {
		case 'n': base = strtoull(optarg, NULL, 10); break;
		case 'm': build = strtoull(optarg, NULL, 10); break;
		case 'r': scale = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 'k': keep = true; break;
		default: usage();
		}
	}
	if (base < 100 || scale == 0)
		usage();
	if (build == 0)
		build = base < 10000 ? base : 10000;
	char *scratch;
	if (dir) {
		scratch = xstrdup(dir);
		mkdir(scratch, 0755);
	} else {
		const char *tmp = getenv("TMPDIR");
		scratch = xasprintf("%s/bench-shard-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(scratch)) {
			perror("mkdtemp");
			return 1;
		}
	}

	load_corpus();
	struct utsname u;
	uname(&u);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	printf("bench-shard: %s %s, %ld cores; corpus %zu words; documents of %d "
	       "positional words\n", u.sysname, u.release, cores, ntoks, BODY_WORDS);
	struct bench_doc *sample = xmalloc(sizeof *sample);
	bench_make_doc(sample, 1, 1);
	printf("sample document: %zu bytes of text\n\n", sample->text_len);
	free(sample);

	/* 0. The shim's own cost, without the disk: building the same
	 * documents in memory, the two ways taking turns. */
	double mem[2] = { 0 };
	for (int r = 0; r < 10; r++) {
		mem[0] += shim_build_docs((uint64_t)r * 500 + 1, 500);
		mem[1] += direct_build_docs((uint64_t)r * 500 + 1, 500);
	}
	printf("building 5000 documents in memory (CPU): shim %.1f us/doc, direct "
	       "%.1f us/doc, shim overhead %+.1f%%\n\n", mem[0] / 5000 * 1e6,
	       mem[1] / 5000 * 1e6, 100.0 * (mem[0] - mem[1]) / mem[1]);
	fflush(stdout);

	/* 1. Build from scratch, the three ways, commits of 1000. */
	printf("build from scratch, %" PRIu64 " documents, commit every 1000:\n", build);
	char *p_store = xasprintf("%s/build-shard", scratch);
	char *p_shim = xasprintf("%s/build-shim", scratch);
	char *p_direct = xasprintf("%s/build-direct", scratch);
	/* The three take turns, 1000 documents (one commit) at a time. */
	double cb[3] = { 0 }, tb[3] = { 0 };
	for (uint64_t done = 0; done < build;) {
		size_t m = build - done < 1000 ? (size_t)(build - done) : 1000;
		double cc, tt;
		tt = store_write(p_store, NULL, m, &cc, done + 1, 1, 1000, true);
		tb[0] += tt;
		cb[0] += cc;
		tt = shim_write(p_shim, NULL, m, &cc, done + 1, 1, 1000, true);
		tb[1] += tt;
		cb[1] += cc;
		tt = direct_build(p_direct, done + 1, m, 1000, &cc);
		if (tt < 0)
			return 1;
		tb[2] += tt;
		cb[2] += cc;
		done += m;
	}
	double tb_store = tb[0], tb_shim = tb[1], tb_direct = tb[2];
	printf("  %-7s %8s  %8s  %s\n", "method", "docs/s", "wall s", "CPU ms/doc");
	printf("  %-7s %8.1f  %8.1f  %.2f\n", "shard", build / tb_store, tb_store, cb[0] * 1e3 / build);
	printf("  %-7s %8.1f  %8.1f  %.2f\n", "shim", build / tb_shim, tb_shim, cb[1] * 1e3 / build);
	printf("  %-7s %8.1f  %8.1f  %.2f\n", "direct", build / tb_direct, tb_direct, cb[2] * 1e3 / build);
	printf("  CPU time: shim vs direct %+.1f%%, shard store vs shim %+.1f%%\n\n",
	       100.0 * (cb[1] - cb[2]) / cb[2], 100.0 * (cb[0] - cb[1]) / cb[1]);
	fflush(stdout);

	/* 2. The base shard the replacements go into. */
	char *p_base = xasprintf("%s/base", scratch);
	double t_base;
	if (base == build) {
		rename(p_store, p_base);
		t_base = tb_store;
	} else {
		double cpu_base;
		t_base = store_write(p_base, NULL, base, &cpu_base, 1, 1, 1000, true);
	}
	printf("base shard: %" PRIu64 " documents built in %.1f s (%.1f docs/s), %.1f MiB\n\n",
	       base, t_base, base / t_base, dir_bytes(p_base) / 1048576.0);
	fflush(stdout);

	/* 3. Replacements into the base shard at three batch sizes, the three
	 * ways taking turns so that each sees the same database size. */
	static const unsigned batches[] = { 1, 100, 1000 };
	static const size_t counts[] = { 20, 300, 2000 };
	uint64_t rev = 2;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	double one_commit[3] = { 0 };
	printf("replace into the %" PRIu64 "-document shard (random pages, new text);\n"
	       "docs/s is wall time, CPU is process CPU ms per document:\n", base);
	printf("  %-5s %5s  %9s %9s %9s  %8s %8s %8s  %s\n", "batch", "docs",
	       "shard/s", "shim/s", "direct/s", "CPUshard", "CPUshim", "CPUdir",
	       "shim vs direct (CPU)");
	for (int bi = 0; bi < 3; bi++) {
		size_t n = counts[bi] * scale;
		/* The three take turns commit by commit, so that each sees
		 * the same database and the same neighbours' load. */
		size_t rounds = n / batches[bi];
		uint64_t *pages = xmalloc(batches[bi] * sizeof *pages);
		double t[3] = { 0 }, cpu[3] = { 0 };
		for (size_t r = 0; r < rounds; r++) {
			for (int way = 0; way < 3; way++) {
				size_t m = batches[bi];
				for (size_t i = 0; i < m; i++) {
					rng = mix(rng + i);
					pages[i] = 1 + rng % base;
				}
				double tt, cc = 0;
				if (way == 0)
					tt = store_write(p_base, pages, m, &cc, 0, rev, m, false);
				else if (way == 1)
					tt = shim_write(p_base, pages, m, &cc, 0, rev, m, false);
				else
					tt = direct_replace(p_base, pages, m, rev, m, &cc);
				if (tt < 0)
					return 1;
				t[way] += tt;
				cpu[way] += cc;
				rev++;
			}
		}
		printf("  %-5u %5zu  %9.1f %9.1f %9.1f  %8.2f %8.2f %8.2f  %+.1f%%\n",
		       batches[bi], n, n / t[0], n / t[1], n / t[2], cpu[0] * 1e3 / n,
		       cpu[1] * 1e3 / n, cpu[2] * 1e3 / n,
		       100.0 * (cpu[1] - cpu[2]) / cpu[2]);
		fflush(stdout);
		if (bi == 0)
			for (int w = 0; w < 3; w++)
				one_commit[w] = t[w] / n;
		free(pages);
	}
	printf("\none replace+commit into %" PRIu64 " documents: %.1f ms (shard), "
	       "%.1f ms (shim), %.1f ms (direct)\n", base, one_commit[0] * 1e3,
	       one_commit[1] * 1e3, one_commit[2] * 1e3);
	printf("building that shard from scratch: %.1f s, i.e. %.0f single-page "
	       "updates\n", t_base, t_base / one_commit[0]);
	printf("shard size after the replacements: %.1f MiB\n",
	       dir_bytes(p_base) / 1048576.0);

	if (!keep)
		nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		printf("kept %s\n", scratch);
	free(p_store);
	free(p_shim);
	free(p_direct);
	free(p_base);
	free(scratch);
	free(toks);
	free(tok_off);
	buf_release(&corpus_text);
	buf_release(&corpus_lower);
	return 0;
}
