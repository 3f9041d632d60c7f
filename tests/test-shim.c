/* SPDX-License-Identifier: MIT */
/*
 * test-shim.c: the Xapian C shim through its C API: writing and reading
 * documents, metadata, queries and snippets, and the catch paths (locked,
 * corrupt, missing, modified under a reader).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status.h"
#include "testsupport.h"
#include "xapian-shim.h"

static char *tmpdir;

static void setup(void)
{
	tmpdir = test_mkdtemp("shim");
}

static void teardown(void)
{
	test_rmtree(tmpdir);
	free(tmpdir);
}

TestSuite(shim, .init = setup, .fini = teardown);

static char *path_in(const char *name)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

/* Builds a document with unique term Q<id> and positional words of text. */
static struct xdoc *make_doc(unsigned id, const char *text)
{
	struct xdoc *d = xdoc_new();
	cr_assert_not_null(d);
	char q[32];
	snprintf(q, sizeof q, "Q%u", id);
	cr_assert_eq(xdoc_add_term(d, NULL, q, strlen(q), 0), STATUS_OK);
	uint32_t pos = 1;
	const char *p = text;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n)
			cr_assert_eq(xdoc_add_posting(d, "", p, n, pos++, 1), STATUS_OK);
		p += n;
		p += strspn(p, " ");
	}
	cr_assert_eq(xdoc_set_data(d, text, strlen(text)), STATUS_OK);
	cr_assert_eq(xdoc_set_value_number(d, 0, id * 10.0), STATUS_OK);
	return d;
}

static void put(struct xdb *db, unsigned id, const char *text)
{
	struct xdoc *d = make_doc(id, text);
	char q[32];
	snprintf(q, sizeof q, "Q%u", id);
	cr_assert_eq(xdb_replace(db, q, d), STATUS_OK, "%s", xdb_errmsg(db));
	xdoc_free(d);
}

static size_t search_count(struct xdb *db, const char *term)
{
	struct xquery *q = xquery_term(term, strlen(term), 1);
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search(db, q, 0, 10, &m), STATUS_OK, "%s", xdb_errmsg(db));
	size_t n = xmset_size(m);
	xmset_free(m);
	xquery_free(q);
	return n;
}

Test(shim, replace_commit_search_and_snippet)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK, "%s", xdb_errmsg(w));
	put(w, 1, "the quick brown fox jumps over the lazy dog");
	put(w, 2, "a slow green turtle sleeps");
	cr_assert_eq(xdb_commit(w), STATUS_OK);

	struct xdb *r = xdb_new();
	cr_assert_eq(xdb_open_read(r, p), STATUS_OK, "%s", xdb_errmsg(r));
	uint64_t n = 0;
	cr_assert_eq(xdb_doc_count(r, &n), STATUS_OK);
	cr_assert_eq(n, 2);

	const char *words[] = { "brown", "fox" };
	struct xquery *ph = xquery_phrase(words, 2, 0);
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search(r, ph, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	cr_assert_eq(xmset_estimate(m), 1);
	struct xmset_hit hit;
	cr_assert_eq(xmset_hit(m, 0, &hit), STATUS_OK);
	cr_assert_eq(hit.rank, 0);
	cr_assert_gt(hit.weight, 0);
	cr_assert_str_eq(hit.data, "the quick brown fox jumps over the lazy dog");
	cr_assert_eq(xmset_hit(m, 1, &hit), STATUS_INVALID);
	char *snip = NULL;
	cr_assert_eq(xmset_snippet(m, hit.data, hit.data_len, 200, "english",
				   "<b>", "</b>", &snip), STATUS_OK);
	/* Adjacent matches share one highlight. */
	cr_assert_not_null(strstr(snip, "<b>brown fox</b>"), "snippet: %s", snip);
	free(snip);
	cr_assert_eq(xmset_snippet(m, "x", 1, 10, "klingon", "", "", &snip),
		     STATUS_INVALID);
	cr_assert_neq(xmset_errmsg(m)[0], '\0');
	xmset_free(m);

	/* Reversed words are not a phrase. */
	const char *rev[] = { "fox", "brown" };
	struct xquery *ph2 = xquery_phrase(rev, 2, 0);
	cr_assert_eq(xdb_search(r, ph2, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 0);
	xmset_free(m);

	/* Boolean operators. */
	struct xquery *fox = xquery_term("fox", 3, 1);
	struct xquery *turtle = xquery_term("turtle", 6, 1);
	struct xquery *or = xquery_combine(XQUERY_OR, fox, turtle);
	struct xquery *andnot = xquery_combine(XQUERY_AND_NOT, or, fox);
	struct xquery *scaled = xquery_scale(andnot, 2.0);
	cr_assert_eq(xdb_search(r, or, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 2);
	xmset_free(m);
	cr_assert_eq(xdb_search(r, scaled, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	cr_assert_eq(xmset_hit(m, 0, &hit), STATUS_OK);
	cr_assert_str_eq(hit.data, "a slow green turtle sleeps");
	xmset_free(m);
	struct xquery *all = xquery_match_all();
	/* A NULL side means "no query": the other side is used alone. */
	struct xquery *alone = xquery_combine(XQUERY_OR, NULL, turtle);
	struct xquery *filt = xquery_combine(XQUERY_FILTER, all, alone);
	char *desc = xquery_describe(filt);
	cr_assert_not_null(strstr(desc, "turtle"), "%s", desc);
	free(desc);

	xquery_free(ph);
	xquery_free(ph2);
	xquery_free(fox);
	xquery_free(turtle);
	xquery_free(or);
	xquery_free(andnot);
	xquery_free(scaled);
	xquery_free(all);
	xquery_free(alone);
	xquery_free(filt);
	xdb_free(r);
	xdb_free(w);
	free(p);
}

Test(shim, get_replace_delete_by_unique_term)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	put(w, 7, "first version");
	struct xdoc *d = NULL;
	/* Pending writes are visible to the writer. */
	cr_assert_eq(xdb_get(w, "Q7", &d), STATUS_OK, "%s", xdb_errmsg(w));
	double v;
	cr_assert_eq(xdoc_get_value_number(d, 0, &v), STATUS_OK);
	cr_assert_float_eq(v, 70.0, 1e-9);
	char *data;
	size_t len;
	cr_assert_eq(xdoc_get_data(d, &data, &len), STATUS_OK);
	cr_assert_str_eq(data, "first version");
	free(data);
	xdoc_free(d);

	put(w, 7, "second version");
	uint64_t n;
	cr_assert_eq(xdb_doc_count(w, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(search_count(w, "first"), 0);
	cr_assert_eq(search_count(w, "second"), 1);

	cr_assert_eq(xdb_delete(w, "Q7"), STATUS_OK);
	cr_assert_eq(xdb_delete(w, "Q7"), STATUS_NOT_FOUND);
	cr_assert_eq(xdb_get(w, "Q7", &d), STATUS_NOT_FOUND);
	cr_assert_eq(xdb_doc_count(w, &n), STATUS_OK);
	cr_assert_eq(n, 0);
	xdb_free(w);
	free(p);
}

Test(shim, document_hash_ignores_build_order)
{
	struct xdoc *a = xdoc_new(), *b = xdoc_new();
	cr_assert_eq(xdoc_add_posting(a, "S", "x", 1, 1, 1), STATUS_OK);
	cr_assert_eq(xdoc_add_posting(a, "", "y", 1, 2, 1), STATUS_OK);
	cr_assert_eq(xdoc_add_posting(b, "", "y", 1, 2, 1), STATUS_OK);
	cr_assert_eq(xdoc_add_posting(b, "S", "x", 1, 1, 1), STATUS_OK);
	xdoc_set_value(a, 3, "aaaa", 4);
	xdoc_set_value(b, 3, "bbbb", 4);
	uint64_t ha, hb;
	cr_assert_eq(xdoc_hash(a, 3, &ha), STATUS_OK);
	cr_assert_eq(xdoc_hash(b, 3, &hb), STATUS_OK);
	cr_assert_eq(ha, hb);
	/* A different position is a different document. */
	cr_assert_eq(xdoc_add_posting(b, "", "y", 1, 9, 1), STATUS_OK);
	cr_assert_eq(xdoc_hash(b, 3, &hb), STATUS_OK);
	cr_assert_neq(ha, hb);
	/* Too long and empty terms are refused with a message. */
	char big[300];
	memset(big, 'a', sizeof big);
	cr_assert_eq(xdoc_add_posting(a, "", big, sizeof big, 3, 1), STATUS_INVALID);
	cr_assert_neq(xdoc_errmsg(a)[0], '\0');
	cr_assert_eq(xdoc_add_term(a, "Z", "", 0, 1), STATUS_INVALID);
	size_t n;
	cr_assert_eq(xdoc_term_count(a, &n), STATUS_OK);
	cr_assert_eq(n, 2);
	xdoc_free(a);
	xdoc_free(b);
}

Test(shim, metadata_survives_close_and_reopen)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(w, "k", "v1"), STATUS_OK);
	char *v = NULL;
	cr_assert_eq(xdb_get_metadata(w, "k", &v), STATUS_OK);
	cr_assert_str_eq(v, "v1");
	free(v);
	cr_assert_eq(xdb_get_metadata(w, "missing", &v), STATUS_NOT_FOUND);
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	cr_assert_eq(xdb_close(w), STATUS_OK);
	cr_assert_eq(xdb_open_write(w, p, 0), STATUS_OK);
	cr_assert_eq(xdb_get_metadata(w, "k", &v), STATUS_OK);
	cr_assert_str_eq(v, "v1");
	free(v);
	xdb_free(w);
	free(p);
}

/* Collects metadata keys into a comma-separated list. */
static int collect_key(void *ctx, const char *key)
{
	char *out = ctx;
	if (*out)
		strcat(out, ",");
	strcat(out, key);
	return 0;
}

Test(shim, metadata_keys_by_prefix)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(w, "lang.ru", "x"), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(w, "lang.de", "x"), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(w, "other", "x"), STATUS_OK);
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	char keys[128] = "";
	cr_assert_eq(xdb_metadata_keys(w, "lang.", collect_key, keys), STATUS_OK);
	cr_assert_str_eq(keys, "lang.de,lang.ru");
	keys[0] = '\0';
	cr_assert_eq(xdb_metadata_keys(w, NULL, collect_key, keys), STATUS_OK);
	cr_assert_str_eq(keys, "lang.de,lang.ru,other");
	struct xdb *closed = xdb_new();
	cr_assert_eq(xdb_metadata_keys(closed, "", collect_key, keys), STATUS_INVALID);
	xdb_free(closed);
	xdb_free(w);
	free(p);
}

Test(shim, combine_many_and_prefix_queries)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	put(w, 1, "alpha beta");
	put(w, 2, "beta gamma");
	put(w, 3, "delta");
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	const char *words[] = { "alpha", "gamma", "beta" };
	struct xquery *parts[4] = { NULL };
	for (int i = 0; i < 3; i++)
		parts[i + 1] = xquery_term(words[i], strlen(words[i]), 1);
	/* NULL parts are skipped. */
	struct xquery * or = xquery_combine_n(XQUERY_OR, (const struct xquery *const *)parts, 4);
	struct xquery *and = xquery_combine_n(XQUERY_AND, (const struct xquery *const *)parts + 2,
					      2);
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search(w, or, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 2);
	xmset_free(m);
	cr_assert_eq(xdb_search(w, and, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	struct xmset_hit hit;
	cr_assert_eq(xmset_hit(m, 0, &hit), STATUS_OK);
	cr_assert_str_eq(hit.data, "beta gamma");
	xmset_free(m);
	cr_assert_null(xquery_combine_n(XQUERY_OR, (const struct xquery *const *)parts, 1));
	cr_assert_null(xquery_combine_n(XQUERY_FILTER, (const struct xquery *const *)parts, 4));
	/* A prefix matches every term starting with it. */
	struct xquery *pre = xquery_prefix("al");
	cr_assert_eq(xdb_search(w, pre, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	xmset_free(m);
	struct xquery *none = xquery_prefix("zz");
	cr_assert_eq(xdb_search(w, none, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 0);
	xmset_free(m);
	cr_assert_null(xquery_prefix(""));
	for (int i = 0; i < 4; i++)
		xquery_free(parts[i]);
	xquery_free(or);
	xquery_free(and);
	xquery_free(pre);
	xquery_free(none);
	xdb_free(w);
	free(p);
}

Test(shim, cancel_discards_a_transaction)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	cr_assert_eq(xdb_begin(w), STATUS_OK);
	cr_assert_eq(xdb_begin(w), STATUS_INVALID);
	put(w, 1, "kept");
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	cr_assert_eq(xdb_begin(w), STATUS_OK);
	put(w, 2, "dropped");
	cr_assert_eq(xdb_cancel(w), STATUS_OK);
	cr_assert_eq(xdb_cancel(w), STATUS_INVALID);
	/* Closing with an open transaction discards it too. */
	cr_assert_eq(xdb_begin(w), STATUS_OK);
	put(w, 3, "dropped too");
	cr_assert_eq(xdb_close(w), STATUS_OK);
	cr_assert_eq(xdb_open_read(w, p), STATUS_OK);
	uint64_t n;
	cr_assert_eq(xdb_doc_count(w, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(search_count(w, "kept"), 1);
	xdb_free(w);
	free(p);
}

Test(shim, missing_database_is_not_found)
{
	char *p = path_in("nope");
	struct xdb *db = xdb_new();
	cr_assert_eq(xdb_open_read(db, p), STATUS_NOT_FOUND);
	cr_assert_not_null(strstr(xdb_errmsg(db), "nope"), "%s", xdb_errmsg(db));
	cr_assert_eq(xdb_open_write(db, p, 0), STATUS_NOT_FOUND);
	xdb_free(db);
	free(p);
}

Test(shim, second_writer_is_locked)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct xdb *w2 = xdb_new();
		enum status st = xdb_open_write(w2, p, 0);
		int ok = st == STATUS_LOCKED && strstr(xdb_errmsg(w2), "Lock");
		_exit(ok ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the other process did not get STATUS_LOCKED");
	/* Within one process too (Xapian's rule). */
	struct xdb *w2 = xdb_new();
	cr_assert_eq(xdb_open_write(w2, p, 0), STATUS_LOCKED);
	xdb_free(w2);
	close(ready[0]);
	close(ready[1]);
	xdb_free(w);
	free(p);
}

Test(shim, truncated_files_are_corrupt_not_a_crash)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	for (unsigned i = 1; i <= 50; i++)
		put(w, i, "some words to fill the postlist table with blocks");
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	xdb_free(w);

	const char *files[] = { "iamglass", "postlist.glass", "docdata.glass" };
	for (size_t i = 0; i < 3; i++) {
		char *f;
		cr_assert(asprintf(&f, "%s/%s", p, files[i]) > 0);
		cr_assert_eq(truncate(f, 10), 0, "%s", f);
		free(f);
	}
	struct xdb *r = xdb_new();
	enum status st = xdb_open_read(r, p);
	cr_assert_eq(st, STATUS_CORRUPT, "got %s: %s", status_str(st), xdb_errmsg(r));
	cr_assert_not_null(strstr(xdb_errmsg(r), p), "%s", xdb_errmsg(r));
	cr_assert_not_null(strstr(xdb_errmsg(r), "Database"), "%s", xdb_errmsg(r));
	st = xdb_open_write(r, p, 0);
	cr_assert_eq(st, STATUS_CORRUPT, "got %s: %s", status_str(st), xdb_errmsg(r));
	xdb_free(r);
	free(p);
}

Test(shim, reader_reopens_after_modification)
{
	char *p = path_in("db");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK);
	char text[512];
	/* Enough documents that the tables have interior blocks a reader does
	 * not hold in memory. */
	for (unsigned i = 1; i <= 3000; i++) {
		snprintf(text, sizeof text, "common w%u x%u y%u z%u v%u u%u t%u",
			 i, i % 97, i % 89, i % 83, i % 79, i % 73, i % 71);
		put(w, i, text);
	}
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	struct xdb *r = xdb_new();
	cr_assert_eq(xdb_open_read(r, p), STATUS_OK);

	/* Rewrite everything in a few commits: the blocks of the reader's
	 * revision get reused and it must reopen. */
	for (int round = 0; round < 3; round++) {
		for (unsigned i = 1; i <= 3000; i++) {
			snprintf(text, sizeof text, "common round%d w%u r%u", round,
				 i, i % 101);
			put(w, i, text);
		}
		cr_assert_eq(xdb_commit(w), STATUS_OK);
	}
	int modified = 0;
	enum status st = STATUS_OK;
	const char *probe[] = { "w1234", "x17", "y5", "common", "w2999" };
	for (size_t k = 0; k < 5 && st == STATUS_OK; k++) {
		struct xquery *q = xquery_term(probe[k], strlen(probe[k]), 1);
		struct xmset *m = NULL;
		st = xdb_search(r, q, 0, 50, &m);
		if (st == STATUS_OK)
			xmset_free(m);
		xquery_free(q);
	}
	if (st == STATUS_MODIFIED) {
		modified = 1;
		cr_assert_not_null(strstr(xdb_errmsg(r), "Modified"), "%s", xdb_errmsg(r));
		cr_assert_eq(xdb_reopen(r), STATUS_OK);
	}
	cr_assert(st == STATUS_OK || st == STATUS_MODIFIED, "%s: %s",
		  status_str(st), xdb_errmsg(r));
	/* Either way, after reopen() the reader sees the newest commit. */
	cr_assert_eq(xdb_reopen(r), STATUS_OK);
	cr_assert_eq(search_count(r, "round2"), 10);
	cr_assert(modified, "the reader was never invalidated: test did not exercise reopen");
	xdb_free(r);
	xdb_free(w);
	free(p);
}

Test(shim, combined_readers_interleave_docids)
{
	char *a = path_in("a"), *b = path_in("b");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, a, XDB_CREATE), STATUS_OK);
	put(w, 1, "alpha shared");
	cr_assert_eq(xdb_close(w), STATUS_OK);
	cr_assert_eq(xdb_open_write(w, b, XDB_CREATE), STATUS_OK);
	put(w, 2, "beta shared");
	cr_assert_eq(xdb_close(w), STATUS_OK);
	xdb_free(w);

	struct xdb *r = xdb_new();
	cr_assert_eq(xdb_open_read(r, a), STATUS_OK);
	cr_assert_eq(xdb_add_read(r, b), STATUS_OK);
	cr_assert_eq(search_count(r, "shared"), 2);
	struct xquery *q = xquery_term("beta", 4, 1);
	struct xmset *m;
	cr_assert_eq(xdb_search(r, q, 0, 10, &m), STATUS_OK);
	struct xmset_hit hit;
	cr_assert_eq(xmset_hit(m, 0, &hit), STATUS_OK);
	cr_assert_eq(hit.docid, 2); /* (1 - 1) * 2 + 1 + 1 */
	xmset_free(m);
	xquery_free(q);
	char *c = path_in("missing");
	cr_assert_eq(xdb_add_read(r, c), STATUS_NOT_FOUND);
	cr_assert_not_null(strstr(xdb_errmsg(r), "missing"));
	xdb_free(r);
	free(a);
	free(b);
	free(c);
}

/* Appends each term to the string ctx (256 bytes), space-separated. */
static int join_term(void *ctx, const char *term, size_t len, uint64_t docs)
{
	(void)docs;
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%s%.*s", n ? " " : "", (int)len, term);
	return 0;
}

Test(shim, term_walk_resumes_after_a_term)
{
	char *path = path_in("terms");
	struct xdb *db = xdb_new();
	cr_assert_eq(xdb_open_write(db, path, XDB_CREATE), STATUS_OK, "%s", xdb_errmsg(db));
	put(db, 1, "one");
	put(db, 2, "two");
	put(db, 10, "ten");
	cr_assert_eq(xdb_commit(db), STATUS_OK);
	char out[256] = "";
	cr_assert_eq(xdb_terms_after(db, "Q", NULL, 0, join_term, out), STATUS_OK);
	cr_assert_str_eq(out, "Q1 Q10 Q2");
	out[0] = '\0';
	cr_assert_eq(xdb_terms_after(db, "Q", "Q1", 0, join_term, out), STATUS_OK);
	cr_assert_str_eq(out, "Q10 Q2");
	out[0] = '\0';
	/* A term that is gone: the walk goes on with the next one. */
	cr_assert_eq(xdb_terms_after(db, "Q", "Q11", 1, join_term, out), STATUS_OK);
	cr_assert_str_eq(out, "Q2");
	out[0] = '\0';
	cr_assert_eq(xdb_terms_after(db, "Q", "Q2", 0, join_term, out), STATUS_OK);
	cr_assert_str_eq(out, "");
	xdb_free(db);
	free(path);
}

Test(shim, snippet_of_a_long_text_finds_a_late_match)
{
	char *p = path_in("long");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, p, XDB_CREATE), STATUS_OK, "%s", xdb_errmsg(w));
	put(w, 1, "walrus");
	put(w, 2, "seal");
	put(w, 3, "otter");
	cr_assert_eq(xdb_commit(w), STATUS_OK);
	struct xquery *q = xquery_term("walrus", 6, 1);
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search(w, q, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	/* 48 KiB of filler, then the word (capitalised), then more. */
	size_t len = 64 * 1024;
	char *text = malloc(len + 1);
	for (size_t i = 0; i < len; i++)
		text[i] = "plain filler words "[i % 19];
	memcpy(text + 48 * 1024, " Walrus ", 8);
	text[len] = '\0';
	char *snip = NULL;
	cr_assert_eq(xmset_snippet(m, text, len, 200, "english", "<b>", "</b>", &snip), STATUS_OK);
	cr_assert_not_null(strstr(snip, "<b>Walrus</b>"), "snippet: %s", snip);
	cr_assert_eq(strncmp(snip, "...", 3), 0, "snippet: %s", snip);
	free(snip);
	/* No match anywhere: some of the text, nothing marked. */
	memcpy(text + 48 * 1024, " Wxlrus ", 8);
	cr_assert_eq(xmset_snippet(m, text, len, 200, "english", "<b>", "</b>", &snip), STATUS_OK);
	cr_assert_not_null(strstr(snip, "plain filler"), "snippet: %s", snip);
	cr_assert_null(strstr(snip, "<b>"), "snippet: %s", snip);
	free(snip);
	free(text);
	xmset_free(m);
	xquery_free(q);
	xdb_free(w);
	free(p);
}

/* Appends "term:docid/length" for each posting to the string ctx (256
 * bytes). */
static int join_posting(void *ctx, const char *term, size_t len, uint32_t docid, uint64_t doclen)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%s%.*s:%u/%llu", n ? " " : "", (int)len, term, docid,
		 (unsigned long long)doclen);
	return 0;
}

/* Keeps the first posting's docid and stops the walk. */
static int first_posting(void *ctx, const char *term, size_t len, uint32_t docid, uint64_t doclen)
{
	(void)term;
	(void)len;
	(void)doclen;
	*(uint32_t *)ctx = docid;
	return 1;
}

Test(shim, postings_walk_over_a_prefix)
{
	char *a = path_in("pa"), *b = path_in("pb");
	struct xdb *w = xdb_new();
	cr_assert_eq(xdb_open_write(w, a, XDB_CREATE), STATUS_OK);
	put(w, 1, "otter");           /* docid 1 in a: 1 combined */
	put(w, 3, "otters swim far"); /* docid 2 in a: 3 combined */
	cr_assert_eq(xdb_close(w), STATUS_OK);
	cr_assert_eq(xdb_open_write(w, b, XDB_CREATE), STATUS_OK);
	put(w, 2, "otter otter"); /* docid 1 in b: 2 combined */
	cr_assert_eq(xdb_close(w), STATUS_OK);
	xdb_free(w);

	struct xdb *r = xdb_new();
	cr_assert_eq(xdb_open_read(r, a), STATUS_OK);
	cr_assert_eq(xdb_add_read(r, b), STATUS_OK);
	/* Term by term, docids rising within a term, lengths with the Q
	 * term (wdf 0) not counted. */
	char out[256] = "";
	cr_assert_eq(xdb_postings(r, "otter", 0, join_posting, out), STATUS_OK, "%s",
		     xdb_errmsg(r));
	cr_assert_str_eq(out, "otter:1/1 otter:2/2 otters:3/3");
	/* max bounds the terms walked, not the postings. */
	out[0] = '\0';
	cr_assert_eq(xdb_postings(r, "otter", 1, join_posting, out), STATUS_OK);
	cr_assert_str_eq(out, "otter:1/1 otter:2/2");
	out[0] = '\0';
	cr_assert_eq(xdb_postings(r, "zebra", 0, join_posting, out), STATUS_OK);
	cr_assert_str_eq(out, "");
	uint32_t first = 0;
	cr_assert_eq(xdb_postings(r, "otters", 0, first_posting, &first), STATUS_OK);
	cr_assert_eq(first, 3);

	/* Values and data by docid; a missing value is "". */
	char *v = NULL;
	size_t len = 99;
	cr_assert_eq(xdb_doc_value(r, 2, 0, &v, &len), STATUS_OK, "%s", xdb_errmsg(r));
	cr_assert_gt(len, 0); /* sortable_serialise(20) */
	free(v);
	cr_assert_eq(xdb_doc_value(r, 2, 7, &v, &len), STATUS_OK);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(v, "");
	free(v);
	char *data = NULL;
	cr_assert_eq(xdb_doc_data(r, 3, &data, &len), STATUS_OK);
	cr_assert_str_eq(data, "otters swim far");
	cr_assert_eq(len, 15);
	free(data);
	cr_assert_eq(xdb_doc_data(r, 9, &data, &len), STATUS_NOT_FOUND);
	xdb_free(r);
	free(a);
	free(b);
}

/* A remote that nobody serves fails with STATUS_TRANSIENT, naming it,
 * within its connect timeout; so does adding one to an open reader. */
Test(shim, unreachable_remote_is_transient)
{
	int port = test_free_port();
	struct xdb *db = xdb_new();
	cr_assert_eq(xdb_open_remote(db, "127.0.0.1", (unsigned)port, 500, 500),
		     STATUS_TRANSIENT);
	char want[64];
	snprintf(want, sizeof want, "127.0.0.1:%d", port);
	cr_assert_not_null(strstr(xdb_errmsg(db), want), "%s", xdb_errmsg(db));
	cr_assert_not_null(strstr(xdb_errmsg(db), "NetworkError"), "%s", xdb_errmsg(db));
	char *p = path_in("local");
	cr_assert_eq(xdb_open_write(db, p, XDB_CREATE), STATUS_OK);
	cr_assert_eq(xdb_close(db), STATUS_OK);
	cr_assert_eq(xdb_open_read(db, p), STATUS_OK);
	cr_assert_eq(xdb_add_remote(db, "127.0.0.1", (unsigned)port, 500, 500),
		     STATUS_TRANSIENT);
	xdb_free(db);
	free(p);
}

/* With no_data a search reads no document: data is "" until
 * xmset_load_data(); the length comes from the length list. */
Test(shim, hits_without_data_until_asked)
{
	char *path = path_in("nodata");
	struct xdb *db = xdb_new();
	cr_assert_eq(xdb_open_write(db, path, XDB_CREATE), STATUS_OK, "%s", xdb_errmsg(db));
	put(db, 1, "otter swims");
	put(db, 2, "otter swims and dives and swims again");
	cr_assert_eq(xdb_commit(db), STATUS_OK);
	struct xquery *q = xquery_term("otter", 5, 1);
	const struct xsearch_opts o = { .no_data = true };
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search_opts(db, q, 0, 10, &o, &m), STATUS_OK, "%s", xdb_errmsg(db));
	cr_assert_eq(xmset_size(m), 2);
	for (size_t i = 0; i < 2; i++) {
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(m, i, &h), STATUS_OK);
		cr_assert_eq(h.data_len, 0);
		uint64_t len = 0;
		cr_assert_eq(xmset_doclength(m, i, &len), STATUS_OK);
		cr_assert_eq(len, h.docid == 1 ? 2 : 7, "doc %u: %llu", h.docid,
			     (unsigned long long)len);
		cr_assert_eq(xmset_load_data(m, i), STATUS_OK);
		cr_assert_eq(xmset_hit(m, i, &h), STATUS_OK);
		cr_assert_str_eq(h.data, h.docid == 1 ? "otter swims"
						      : "otter swims and dives and swims again");
	}
	uint64_t len;
	cr_assert_eq(xmset_doclength(m, 2, &len), STATUS_INVALID);
	cr_assert_eq(xmset_load_data(m, 2), STATUS_INVALID);
	xmset_free(m);
	xquery_free(q);
	xdb_free(db);
	free(path);
}
