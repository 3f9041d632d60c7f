/* SPDX-License-Identifier: MIT */
/*
 * test-shard.c: the shard store through its public API: documents, the
 * write rules (rev guard, no-op, fencing, schema and analyzer versions),
 * crash safety, generations and the atomic swap, multi-shard search, and
 * xapian-check on what the store writes.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shard.h"
#include "status.h"
#include "testsupport.h"
#include "xapian-shim.h"

static char *tmpdir;

static void setup(void)
{
	tmpdir = test_mkdtemp("shard");
}

static void teardown(void)
{
	test_rmtree(tmpdir);
	free(tmpdir);
}

TestSuite(shard, .init = setup, .fini = teardown);

/* A document as the pipeline would build it: plain terms with positions
 * and (fake) stems for title and text, metadata, a category. */
static struct shard_doc *make_doc(uint64_t page, uint64_t rev,
				  const char *title, const char *text)
{
	struct shard_doc *d = shard_doc_new(page);
	shard_doc_set_title(d, title);
	shard_doc_set_rev(d, rev, 1700000000 + (int64_t)rev);
	shard_doc_set_namespace(d, 0);
	shard_doc_set_language(d, "en");
	shard_doc_set_url(d, "http://wiki.test/index.php/X");
	shard_doc_add_category(d, "Test_Pages");
	shard_doc_set_text(d, text, strlen(text));
	const char *fields[2][3] = { { title, SHARD_PREFIX_TITLE, SHARD_PREFIX_TITLE_STEM },
				     { text, SHARD_PREFIX_BODY, SHARD_PREFIX_STEM } };
	for (int f = 0; f < 2; f++) {
		uint32_t pos = 1;
		const char *p = fields[f][0];
		while (*p) {
			size_t n = strcspn(p, " _");
			if (n) {
				char w[64];
				snprintf(w, sizeof w, "%.*s", (int)n, p);
				for (char *c = w; *c; c++)
					if (*c >= 'A' && *c <= 'Z')
						*c += 'a' - 'A';
				shard_doc_add_posting(d, fields[f][1], w, n, pos++);
				/* A crude "stem": drop a final s. */
				size_t sn = n > 3 && w[n - 1] == 's' ? n - 1 : n;
				shard_doc_add_term(d, fields[f][2], w, sn);
			}
			p += n;
			p += strspn(p, " _");
		}
	}
	return d;
}

static struct shard *open_new(const char *name)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, SHARD_CREATE), STATUS_OK, "%s", shard_errmsg(sh));
	free(p);
	return sh;
}

static char *path_of(const char *name)
{
	char *p;
	cr_assert(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

static enum status put(struct shard *sh, uint64_t page, uint64_t rev,
		       const char *title, const char *text)
{
	struct shard_doc *d = make_doc(page, rev, title, text);
	enum status st = shard_replace(sh, d);
	shard_doc_free(d);
	return st;
}

/* Number of documents matching one term in the shard's writer view. */
static size_t hits(struct xdb *db, const char *term)
{
	struct xquery *q = xquery_term(term, strlen(term), 1);
	struct xmset *m = NULL;
	cr_assert_eq(xdb_search(db, q, 0, 100, &m), STATUS_OK, "%s", xdb_errmsg(db));
	size_t n = xmset_size(m);
	xmset_free(m);
	xquery_free(q);
	return n;
}

static uint64_t revision(struct shard *sh)
{
	uint64_t r = 0;
	cr_assert_eq(xdb_revision(shard_xdb(sh), &r), STATUS_OK);
	return r;
}

Test(shard, routes_by_page_id_mod_shards)
{
	cr_assert_eq(shard_route(10, 4), 2);
	cr_assert_eq(shard_route(12, 4), 0);
	cr_assert_eq(shard_route(7, 1), 0);
}

Test(shard, replace_then_search_finds_the_page)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 42, 100, "Red_Panda", "The red panda eats bamboo shoots"),
		     STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(shard_pending(sh, NULL), 1);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(shard_pending(sh, NULL), 0);
	struct xdb *db = shard_xdb(sh);
	cr_assert_eq(hits(db, "bamboo"), 1);
	cr_assert_eq(hits(db, "Sred"), 1);
	cr_assert_eq(hits(db, "Zshoot"), 1);
	cr_assert_eq(hits(db, "XNS0"), 1);
	cr_assert_eq(hits(db, "Len"), 1);
	cr_assert_eq(hits(db, "XCtest pages"), 1);
	cr_assert_eq(hits(db, "Q42"), 1);

	/* The data is the fields a result page shows, one line of JSON,
	 * then the raw text; value 5 holds the same fields. */
	struct xdoc *x = NULL;
	cr_assert_eq(xdb_get(db, "Q42", &x), STATUS_OK);
	char *data;
	size_t len;
	cr_assert_eq(xdoc_get_data(x, &data, &len), STATUS_OK);
	const char *nl = memchr(data, '\n', len);
	cr_assert_not_null(nl, "no text line: %s", data);
	cr_assert_str_eq(nl + 1, "The red panda eats bamboo shoots");
	char *fv;
	size_t fvlen;
	cr_assert_eq(xdoc_get_value(x, SHARD_VALUE_FIELDS, &fv, &fvlen), STATUS_OK);
	cr_assert_eq(fvlen, (size_t)(nl - data));
	cr_assert(memcmp(fv, data, fvlen) == 0, "value 5 %s, data %s", fv, data);
	free(fv);
	struct shard_data sd;
	cr_assert_eq(shard_data_decode(data, len, &sd), STATUS_OK);
	json_t *j = json_incref(sd.fields);
	cr_assert_eq(sd.text_len, strlen("The red panda eats bamboo shoots"));
	cr_assert(memcmp(sd.text, "The red panda eats bamboo shoots", sd.text_len) == 0);
	cr_assert_eq(sd.size, sd.text_len);
	cr_assert_eq(sd.word_count, 6);
	cr_assert_eq(json_integer_value(json_object_get(j, "word_count")), 6);
	cr_assert_null(json_object_get(j, "text"));
	shard_data_release(&sd);
	cr_assert_str_eq(json_string_value(json_object_get(j, "title")), "Red Panda");
	cr_assert_str_eq(json_string_value(json_object_get(j, "display_title")), "Red Panda");
	cr_assert_eq(json_integer_value(json_object_get(j, "page_id")), 42);
	cr_assert_eq(json_integer_value(json_object_get(j, "rev_id")), 100);
	cr_assert_eq(json_integer_value(json_object_get(j, "rev_timestamp")), 1700000100);
	cr_assert_str_eq(json_string_value(json_object_get(j, "language")), "en");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "categories"), 0)),
			 "Test Pages");
	json_decref(j);
	free(data);
	double v;
	cr_assert_eq(xdoc_get_value_number(x, SHARD_VALUE_REV, &v), STATUS_OK);
	cr_assert_float_eq(v, 100, 1e-9);
	cr_assert_eq(xdoc_get_value_number(x, SHARD_VALUE_TIMESTAMP, &v), STATUS_OK);
	cr_assert_float_eq(v, 1700000100, 1e-9);
	char *fp;
	cr_assert_eq(xdoc_get_value(x, SHARD_VALUE_FINGERPRINT, &fp, &len), STATUS_OK);
	cr_assert_eq(len, 16);
	free(fp);
	xdoc_free(x);
	shard_free(sh);
}

Test(shard, data_of_both_schemas_decodes)
{
	/* Schema 3: the fields, a newline, the raw text (newlines, quotes
	 * and backslashes as they are). */
	const char v3[] =
		"{\"page_id\":7,\"title\":\"T\",\"size\":12,\"word_count\":3}\n"
		"a \"b\"\n\\c\td";
	struct shard_data sd;
	cr_assert_eq(shard_data_decode(v3, sizeof v3 - 1, &sd), STATUS_OK);
	cr_assert_eq(json_integer_value(json_object_get(sd.fields, "page_id")), 7);
	cr_assert_eq(sd.text_len, 10);
	cr_assert_str_eq(sd.text, "a \"b\"\n\\c\td");
	cr_assert_eq(sd.size, 12); /* as stored, not counted */
	cr_assert_eq(sd.word_count, 3);
	shard_data_release(&sd);
	cr_assert_null(sd.fields);

	/* Schema 2: one JSON object with the text in it; size and words are
	 * counted. */
	const char v2[] =
		"{\"page_id\":8,\"title\":\"Old\",\"redirects\":[],"
		"\"text\":\"two words\\nand more\"}";
	cr_assert_eq(shard_data_decode(v2, sizeof v2 - 1, &sd), STATUS_OK);
	cr_assert_eq(json_integer_value(json_object_get(sd.fields, "page_id")), 8);
	cr_assert_str_eq(json_string_value(json_object_get(sd.fields, "title")), "Old");
	cr_assert_str_eq(sd.text, "two words\nand more");
	cr_assert_eq(sd.text_len, 18);
	cr_assert_eq(sd.size, 18);
	cr_assert_eq(sd.word_count, 4);
	shard_data_release(&sd);

	/* An empty text, and data that is not ours. */
	cr_assert_eq(shard_data_decode("{\"page_id\":9}\n", 14, &sd), STATUS_OK);
	cr_assert_eq(sd.text_len, 0);
	cr_assert_str_eq(sd.text, "");
	cr_assert_eq(sd.word_count, 0);
	shard_data_release(&sd);
	cr_assert_eq(shard_data_decode("nope", 4, &sd), STATUS_CORRUPT);
	cr_assert_eq(shard_data_decode("[1]\ntext", 8, &sd), STATUS_CORRUPT);
	cr_assert_eq(shard_data_decode("", 0, &sd), STATUS_CORRUPT);
}

Test(shard, invalid_utf8_text_is_stored_valid)
{
	struct shard_doc *d = shard_doc_new(3);
	shard_doc_set_title(d, "Bad");
	shard_doc_set_text(d, "ok \xff\xfe end", 10);
	char *dump = shard_doc_dump(d);
	/* The text line of the dump is JSON: it parsed, so it is UTF-8. */
	const char *t = strstr(dump, "\ntext: ");
	cr_assert_not_null(t, "%s", dump);
	json_t *j = json_loadb(t + 7, strcspn(t + 7, "\n"), JSON_DECODE_ANY, NULL);
	cr_assert_not_null(j, "%s", dump);
	cr_assert_str_eq(json_string_value(j), "ok \xEF\xBF\xBD\xEF\xBF\xBD end");
	json_decref(j);
	free(dump);
	shard_doc_free(d);
}

Test(shard, older_rev_is_skipped_equal_rev_applies)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 7, 500, "Page", "version five hundred"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	uint64_t rev0 = revision(sh);

	/* Older: skipped, reported, nothing pending. */
	cr_assert_eq(put(sh, 7, 499, "Page", "an older text"), STATUS_SKIPPED);
	cr_assert_not_null(strstr(shard_errmsg(sh), "500"), "%s", shard_errmsg(sh));
	cr_assert_eq(shard_pending(sh, NULL), 0);
	cr_assert_eq(hits(shard_xdb(sh), "older"), 0);

	/* Equal rev with changed text (a rerender): applies. */
	cr_assert_eq(put(sh, 7, 500, "Page", "rerendered with a template change"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_gt(revision(sh), rev0);
	cr_assert_eq(hits(shard_xdb(sh), "rerendered"), 1);
	cr_assert_eq(hits(shard_xdb(sh), "hundred"), 0);

	/* The guard sees pending writes too. */
	cr_assert_eq(put(sh, 7, 600, "Page", "six hundred"), STATUS_OK);
	cr_assert_eq(put(sh, 7, 550, "Page", "five fifty"), STATUS_SKIPPED);
	uint64_t r;
	cr_assert_eq(shard_get_rev(sh, 7, &r), STATUS_OK);
	cr_assert_eq(r, 600);
	cr_assert_eq(shard_get_rev(sh, 8, &r), STATUS_NOT_FOUND);
	shard_free(sh);
}

Test(shard, identical_document_is_a_noop)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 3, 10, "Same", "identical text here"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	uint64_t rev0 = revision(sh);
	cr_assert_eq(put(sh, 3, 10, "Same", "identical text here"), STATUS_NOOP,
		     "%s", shard_errmsg(sh));
	cr_assert_eq(shard_pending(sh, NULL), 0);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(revision(sh), rev0, "a no-op made a new database revision");
	/* A newer rev of the same text is not identical (the rev is data). */
	cr_assert_eq(put(sh, 3, 11, "Same", "identical text here"), STATUS_OK);
	shard_free(sh);
}

Test(shard, delete_removes_the_page)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 1, 1, "One", "first page"), STATUS_OK);
	cr_assert_eq(put(sh, 2, 1, "Two", "second page"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(shard_delete(sh, 1), STATUS_OK);
	cr_assert_eq(shard_pending(sh, NULL), 1);
	uint64_t n, rev;
	/* Gone at once for every reader of the store, pending or committed. */
	cr_assert_eq(shard_get_rev(sh, 1, &rev), STATUS_NOT_FOUND);
	cr_assert_eq(shard_doc_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(shard_get_rev(sh, 1, &rev), STATUS_NOT_FOUND);
	cr_assert_eq(shard_delete(sh, 1), STATUS_NOOP);
	cr_assert_eq(shard_doc_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(shard_get_rev(sh, 2, &rev), STATUS_OK);
	cr_assert_eq(shard_dead_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	/* The purge deletes it from Xapian itself. */
	cr_assert_eq(hits(shard_xdb(sh), "first"), 1, "marked, still in Xapian");
	size_t purged = 0;
	cr_assert_eq(shard_purge(sh, 10, &purged), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(purged, 1);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(hits(shard_xdb(sh), "first"), 0);
	cr_assert_eq(hits(shard_xdb(sh), "page"), 1);
	cr_assert_eq(xdb_doc_count(shard_xdb(sh), &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(shard_dead_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(shard_purge(sh, 10, &purged), STATUS_OK);
	cr_assert_eq(purged, 0);
	shard_free(sh);
}

/* A hidden page: a real delete, live or marked, and then a compaction
 * takes its words out of every file of the shard, where a delete alone
 * leaves them (and the earlier versions of a replaced document). */
Test(shard, erase_and_compact_remove_the_text_from_the_files)
{
	struct shard *sh = open_new("scrub");
	char *dir = path_of("scrub");
	for (uint64_t p = 1; p <= 20; p++)
		cr_assert_eq(put(sh, p, 1, "Filler", "rivers and mills of the plain"), STATUS_OK);
	cr_assert_eq(put(sh, 21, 1, "Gone", "the zqxlivesecret word"), STATUS_OK);
	cr_assert_eq(put(sh, 22, 1, "Dead", "the zqxdeadsecret word"), STATUS_OK);
	cr_assert_eq(put(sh, 23, 1, "Kept", "the zqxoldsecret word"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(put(sh, 23, 2, "Kept", "a new text"), STATUS_OK);
	cr_assert_eq(shard_delete(sh, 22), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(shard_erase(sh, 21), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(shard_erase(sh, 22), STATUS_OK, "a marked page is erased too");
	cr_assert_eq(shard_erase(sh, 99), STATUS_NOOP);
	cr_assert_eq(shard_compact(sh), STATUS_INVALID, "compaction with writes pending");
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(hits(shard_xdb(sh), "zqxlivesecret"), 0);
	cr_assert_eq(hits(shard_xdb(sh), "zqxdeadsecret"), 0);
	uint64_t n = 0;
	cr_assert_eq(shard_dead_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 0);
	/* What the test must see go. */
	cr_assert(test_dir_holds(dir, "zqxlivesecret"));
	cr_assert(test_dir_holds(dir, "zqxoldsecret"));

	cr_assert_eq(shard_compact(sh), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_not(test_dir_holds(dir, "zqxlivesecret"));
	cr_assert_not(test_dir_holds(dir, "zqxdeadsecret"));
	cr_assert_not(test_dir_holds(dir, "zqxoldsecret"));
	/* The same shard, open for writing again, nothing else lost. */
	uint64_t rev = 0;
	cr_assert_eq(shard_get_rev(sh, 23, &rev), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(rev, 2);
	cr_assert_eq(shard_doc_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 21);
	cr_assert_eq(put(sh, 24, 1, "After", "written after the compaction"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 2), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(hits(shard_xdb(sh), "compaction"), 1);
	char *copy = path_of("scrub.compact");
	struct stat st;
	cr_assert_neq(stat(copy, &st), 0, "the old files are left at %s", copy);
	free(copy);
	free(dir);
	shard_free(sh);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "xapian-check %s/scrub >/dev/null 2>&1", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

Test(shard, undelete_after_delete_restores_the_same_revision)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 5, 40, "Five", "restored words"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(shard_delete(sh, 5), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	/* MediaWiki's undelete brings back the same rev id and text: neither
	 * the rev guard nor the no-op check may hold it back. */
	cr_assert_eq(put(sh, 5, 40, "Five", "restored words"), STATUS_OK, "%s",
		     shard_errmsg(sh));
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	uint64_t rev = 0, n = 9;
	cr_assert_eq(shard_get_rev(sh, 5, &rev), STATUS_OK);
	cr_assert_eq(rev, 40);
	cr_assert_eq(shard_dead_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(put(sh, 5, 40, "Five", "restored words"), STATUS_NOOP);
	/* An older revision after a delete is a new page as far as the store
	 * knows (the fetcher decides what is current). */
	cr_assert_eq(shard_delete(sh, 5), STATUS_OK);
	cr_assert_eq(put(sh, 5, 39, "Five", "older words"), STATUS_OK);
	cr_assert_eq(shard_get_rev(sh, 5, &rev), STATUS_OK);
	cr_assert_eq(rev, 39);
	/* Purging skips the revived page. */
	size_t purged = 9;
	cr_assert_eq(shard_purge(sh, 10, &purged), STATUS_OK);
	cr_assert_eq(purged, 0);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	cr_assert_eq(xdb_doc_count(shard_xdb(sh), &n), STATUS_OK);
	cr_assert_eq(n, 1);
	shard_free(sh);
}

Test(shard, metadata_survives_close_and_reopen)
{
	char *p = path_of("s");
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, SHARD_CREATE), STATUS_OK);
	cr_assert_eq(shard_check_analyzer(sh, "en", "icu-en", "1.0"), STATUS_OK);
	cr_assert_eq(put(sh, 1, 1, "A", "text"), STATUS_OK);
	cr_assert_eq(shard_set_position(sh, "freshet:{w:p0}", "1700000000000-5"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 9), STATUS_OK);
	cr_assert_eq(shard_close(sh), STATUS_OK);

	cr_assert_eq(shard_open(sh, p, 0), STATUS_OK, "%s", shard_errmsg(sh));
	char *pos = NULL;
	cr_assert_eq(shard_get_position(sh, "freshet:{w:p0}", &pos), STATUS_OK);
	cr_assert_str_eq(pos, "1700000000000-5");
	free(pos);
	cr_assert_eq(shard_get_position(sh, "freshet:{w:p1}", &pos), STATUS_NOT_FOUND);
	uint64_t fence;
	cr_assert_eq(shard_get_fence(sh, &fence), STATUS_OK);
	cr_assert_eq(fence, 9);
	cr_assert_eq(shard_check_analyzer(sh, "en", "icu-en", "1.0"), STATUS_OK);
	char *v = NULL;
	cr_assert_eq(xdb_get_metadata(shard_xdb(sh), "freshet.commit_time", &v), STATUS_OK);
	cr_assert_gt(atoll(v), 1700000000);
	free(v);
	shard_free(sh);
	free(p);
}

Test(shard, uncommitted_write_is_absent_after_kill)
{
	char *p = path_of("s");
	int ready[2];
	cr_assert_eq(pipe(ready), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(ready[0]);
		struct shard *sh = shard_new();
		if (shard_open(sh, p, SHARD_CREATE) != STATUS_OK ||
		    put(sh, 1, 1, "Committed", "committed words") != STATUS_OK ||
		    shard_commit(sh, 1) != STATUS_OK ||
		    put(sh, 2, 1, "Pending", "pending words") != STATUS_OK)
			_exit(1);
		for (int i = 3; i < 300; i++)
			put(sh, (uint64_t)i, 1, "More", "more pending words");
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1, "the writer failed before the kill");
	close(ready[0]);
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFSIGNALED(status));

	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, 0), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(hits(shard_xdb(sh), "committed"), 1);
	cr_assert_eq(hits(shard_xdb(sh), "pending"), 0);
	uint64_t n;
	cr_assert_eq(shard_doc_count(sh, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	shard_free(sh);
	free(p);
}

Test(shard, truncated_shard_is_corrupt_with_a_message)
{
	struct shard *sh = open_new("s");
	for (uint64_t i = 1; i <= 30; i++)
		cr_assert_eq(put(sh, i, 1, "Page", "words for the tables"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	shard_free(sh);
	char *p = path_of("s");
	char *f;
	cr_assert(asprintf(&f, "%s/postlist.glass", p) > 0);
	cr_assert_eq(truncate(f, 100), 0);
	free(f);
	cr_assert(asprintf(&f, "%s/iamglass", p) > 0);
	cr_assert_eq(truncate(f, 3), 0);
	free(f);
	sh = shard_new();
	enum status st = shard_open(sh, p, 0);
	cr_assert_eq(st, STATUS_CORRUPT, "got %s: %s", status_str(st), shard_errmsg(sh));
	cr_assert_not_null(strstr(shard_errmsg(sh), p), "%s", shard_errmsg(sh));
	/* The handle stays usable: a write is refused, not a crash. */
	cr_assert_eq(put(sh, 1, 1, "x", "y"), STATUS_INVALID);
	shard_free(sh);
	free(p);
}

Test(shard, second_writer_gets_locked)
{
	char *p = path_of("s");
	struct shard *sh = open_new("s");
	int ready[2], done[2];
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(done), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct shard *other = shard_new();
		enum status st = shard_open(other, p, 0);
		int ok = st == STATUS_LOCKED && strstr(shard_errmsg(other), "Lock") != NULL;
		_exit(ok ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "a second writer was not refused with STATUS_LOCKED");
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(done[i]);
	}
	shard_free(sh);
	free(p);
}

Test(shard, schema_and_analyzer_mismatch_are_refused)
{
	char *p = path_of("s");
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, SHARD_CREATE), STATUS_OK);
	cr_assert_eq(shard_check_analyzer(sh, "de", "icu-de", "2"), STATUS_OK);
	cr_assert_eq(put(sh, 1, 1, "A", "b"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	/* Another analyzer version for the same language. */
	enum status st = shard_check_analyzer(sh, "de", "icu-de", "3");
	cr_assert_eq(st, STATUS_VERSION);
	cr_assert_not_null(strstr(shard_errmsg(sh), "icu-de 2"), "%s", shard_errmsg(sh));
	cr_assert_not_null(strstr(shard_errmsg(sh), "rebuild"), "%s", shard_errmsg(sh));
	cr_assert_eq(shard_check_analyzer(sh, "fr", "icu-fr", "1"), STATUS_OK);
	shard_close(sh);

	/* A shard written by a future schema. */
	struct xdb *x = xdb_new();
	cr_assert_eq(xdb_open_write(x, p, 0), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(x, "freshet.schema", "99"), STATUS_OK);
	cr_assert_eq(xdb_commit(x), STATUS_OK);
	xdb_free(x);
	st = shard_open(sh, p, 0);
	cr_assert_eq(st, STATUS_VERSION);
	cr_assert_not_null(strstr(shard_errmsg(sh), "schema version 99"), "%s", shard_errmsg(sh));
	cr_assert_not_null(strstr(shard_errmsg(sh), "rebuild"), "%s", shard_errmsg(sh));
	/* Refused means closed: another writer can open it. */
	x = xdb_new();
	cr_assert_eq(xdb_open_write(x, p, 0), STATUS_OK, "%s", xdb_errmsg(x));
	xdb_free(x);
	shard_free(sh);
	free(p);
}

Test(shard, stale_fencing_token_is_refused)
{
	struct shard *sh = open_new("s");
	cr_assert_eq(put(sh, 1, 1, "A", "from the new owner"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 5), STATUS_OK);
	/* The old owner (token 4) wakes up and tries to commit. */
	cr_assert_eq(put(sh, 2, 1, "B", "from the old owner"), STATUS_OK);
	cr_assert_eq(shard_set_position(sh, "p0", "99-0"), STATUS_OK);
	enum status st = shard_commit(sh, 4);
	cr_assert_eq(st, STATUS_FENCED);
	cr_assert_not_null(strstr(shard_errmsg(sh), "token 4"), "%s", shard_errmsg(sh));
	cr_assert_eq(shard_pending(sh, NULL), 0);
	cr_assert_eq(hits(shard_xdb(sh), "old"), 0);
	char *pos;
	cr_assert_eq(shard_get_position(sh, "p0", &pos), STATUS_NOT_FOUND);
	uint64_t f;
	cr_assert_eq(shard_get_fence(sh, &f), STATUS_OK);
	cr_assert_eq(f, 5);
	/* The current token (and a newer one) commit. */
	cr_assert_eq(put(sh, 3, 1, "C", "current owner"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 5), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 6), STATUS_OK);
	cr_assert_eq(shard_get_fence(sh, &f), STATUS_OK);
	cr_assert_eq(f, 6);
	shard_free(sh);
}

Test(shard, pending_reports_count_and_age)
{
	struct shard *sh = open_new("s");
	int64_t since = -1;
	cr_assert_eq(shard_pending(sh, &since), 0);
	cr_assert_eq(since, 0);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	cr_assert_eq(put(sh, 1, 1, "A", "a"), STATUS_OK);
	cr_assert_eq(put(sh, 2, 1, "B", "b"), STATUS_OK);
	cr_assert_eq(shard_pending(sh, &since), 2);
	cr_assert_geq(since, before);
	cr_assert_leq(since, before + 5000);
	shard_free(sh);
}

Test(shard, skips_overlong_terms_and_dumps)
{
	struct shard_doc *d = make_doc(5, 2, "Dump", "alpha beta");
	char big[300];
	memset(big, 'q', sizeof big);
	shard_doc_add_posting(d, "", big, sizeof big, 99);
	shard_doc_add_term(d, "Z", "", 0);
	cr_assert_eq(shard_doc_skipped(d), 2);
	char *dump = shard_doc_dump(d);
	cr_assert_not_null(strstr(dump, "\"page_id\":5"), "%s", dump);
	cr_assert_not_null(strstr(dump, "\nalpha wdf=1 pos=1\n"), "%s", dump);
	cr_assert_not_null(strstr(dump, "\nQ5 wdf=0\n"), "%s", dump);
	free(dump);
	char *t = shard_category_term("Ärger_im_Büro");
	cr_assert_str_eq(t, "XCärger im büro");
	free(t);
	/* Text is cut at a character boundary. */
	size_t n = SHARD_TEXT_MAX + 10;
	char *text = malloc(n + 1);
	for (size_t i = 0; i < n; i += 2)
		memcpy(text + i, "\xC3\xA9", 2); /* é */
	text[n] = '\0';
	shard_doc_set_text(d, text + 1, n - 1); /* starts mid-character */
	free(text);
	dump = shard_doc_dump(d);
	cr_assert_null(strstr(dump, "error"), "%s", dump);
	free(dump);
	shard_doc_free(d);
}

/* Fills generation gen of set with `docs` pages spread over its shards. */
static void fill_generation(struct shard_set *set, const char *gen, unsigned shards,
			    unsigned docs, const char *word)
{
	cr_assert_eq(shard_set_create(set, gen, shards), STATUS_OK, "%s", shard_set_errmsg(set));
	struct shard *sh[8];
	for (unsigned i = 0; i < shards; i++) {
		char *p = shard_set_path(set, gen, i);
		sh[i] = shard_new();
		cr_assert_eq(shard_open(sh[i], p, 0), STATUS_OK, "%s", shard_errmsg(sh[i]));
		free(p);
	}
	char text[128];
	for (unsigned page = 1; page <= docs; page++) {
		snprintf(text, sizeof text, "%s page number %u", word, page);
		cr_assert_eq(put(sh[shard_route(page, shards)], page, 1, "Page", text), STATUS_OK);
	}
	for (unsigned i = 0; i < shards; i++) {
		cr_assert_eq(shard_commit(sh[i], 1), STATUS_OK);
		shard_free(sh[i]);
	}
}

Test(shard, deleted_page_is_hidden_from_search_and_stats)
{
	struct shard_set *set = shard_set_new(tmpdir, "testwiki");
	fill_generation(set, "g1", 2, 10, "shared");
	cr_assert_eq(shard_set_swap(set, "g1"), STATUS_OK, "%s", shard_set_errmsg(set));
	char *p = shard_set_path(set, NULL, 1);
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, 0), STATUS_OK, "%s", shard_errmsg(sh));
	cr_assert_eq(shard_delete(sh, 3), STATUS_OK);
	cr_assert_eq(shard_delete(sh, 5), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 2), STATUS_OK);
	cr_assert_eq(shard_set_open(set), STATUS_OK, "%s", shard_set_errmsg(set));
	const char *w[] = { "number", "3" };
	struct xquery *ph = xquery_phrase(w, 2, 0);
	struct xquery *all = xquery_term("shared", 6, 1);
	struct xmset *m = NULL;
	cr_assert_eq(shard_set_search(set, ph, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 0, "a deleted page is found");
	xmset_free(m);
	cr_assert_eq(shard_set_search(set, all, 0, 100, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 8);
	for (size_t i = 0; i < xmset_size(m); i++) {
		struct xmset_hit hit;
		cr_assert_eq(xmset_hit(m, i, &hit), STATUS_OK);
		cr_assert_null(strstr(hit.data, "number 3\""), "%s", hit.data);
		cr_assert_null(strstr(hit.data, "number 5\""), "%s", hit.data);
	}
	xmset_free(m);
	struct shard_stats st;
	cr_assert_eq(shard_set_stats(set, 1, &st), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_eq(st.docs, 3);
	cr_assert_eq(st.dead, 2);
	/* Purged, the same searches give the same answers. */
	size_t purged = 0;
	cr_assert_eq(shard_purge(sh, 1, &purged), STATUS_OK);
	cr_assert_eq(purged, 1, "the batch limit holds");
	cr_assert_eq(shard_purge(sh, 10, &purged), STATUS_OK);
	cr_assert_eq(purged, 1);
	cr_assert_eq(shard_commit(sh, 2), STATUS_OK);
	cr_assert_eq(shard_set_reopen(set), STATUS_OK);
	cr_assert_eq(shard_set_search(set, all, 0, 100, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 8);
	xmset_free(m);
	cr_assert_eq(shard_set_stats(set, 1, &st), STATUS_OK);
	cr_assert_eq(st.docs, 3);
	cr_assert_eq(st.dead, 0);
	xquery_free(ph);
	xquery_free(all);
	shard_free(sh);
	free(p);
	shard_set_free(set);
}

Test(shard, multi_shard_search_returns_results_from_all_shards)
{
	struct shard_set *set = shard_set_new(tmpdir, "testwiki");
	fill_generation(set, "g1", 4, 40, "shared");
	cr_assert_eq(shard_set_swap(set, "g1"), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_eq(shard_set_open(set), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_eq(shard_set_shards(set), 4);
	cr_assert_str_eq(shard_set_generation(set), "g1");
	struct xquery *q = xquery_term("shared", 6, 1);
	struct xmset *m = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 100, &m), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_eq(xmset_size(m), 40);
	cr_assert_eq(xmset_estimate(m), 40);
	int seen[4] = { 0 };
	for (size_t i = 0; i < xmset_size(m); i++) {
		struct xmset_hit hit;
		cr_assert_eq(xmset_hit(m, i, &hit), STATUS_OK);
		json_t *j = json_loads(hit.data, JSON_DISABLE_EOF_CHECK, NULL);
		cr_assert_not_null(j);
		json_int_t page = json_integer_value(json_object_get(j, "page_id"));
		unsigned s = shard_set_hit_shard(set, hit.docid);
		cr_assert_eq(s, shard_route((uint64_t)page, 4), "page %lld from shard %u",
			     (long long)page, s);
		seen[s]++;
		json_decref(j);
	}
	for (int s = 0; s < 4; s++)
		cr_assert_eq(seen[s], 10);
	xmset_free(m);

	/* Snippets through the combined reader. */
	const char *w[] = { "number", "17" };
	struct xquery *ph = xquery_phrase(w, 2, 0);
	cr_assert_eq(shard_set_search(set, ph, 0, 10, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 1);
	const char *text = "shared page number 17";
	char *snip;
	cr_assert_eq(xmset_snippet(m, text, strlen(text), 100, NULL, "[", "]", &snip), STATUS_OK);
	cr_assert_str_eq(snip, "shared page [number 17]");
	free(snip);
	xmset_free(m);
	xquery_free(ph);

	struct shard_stats st;
	cr_assert_eq(shard_set_stats(set, 1, &st), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_eq(st.docs, 10);
	cr_assert_eq(st.schema, SHARD_SCHEMA_VERSION);
	cr_assert_eq(st.fence, 1);
	cr_assert_gt(st.bytes, 0);
	cr_assert_geq(st.last_commit, time(NULL) - 60);

	/* A new commit is seen after reopen. */
	char *p = shard_set_path(set, NULL, 0);
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, p, 0), STATUS_OK);
	cr_assert_eq(put(sh, 1000, 1, "New", "shared freshly"), STATUS_OK);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	shard_free(sh);
	free(p);
	cr_assert_eq(shard_set_reopen(set), STATUS_OK);
	cr_assert_eq(shard_set_search(set, q, 0, 100, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 41);
	xmset_free(m);
	xquery_free(q);
	shard_set_free(set);
}

Test(shard, generation_swap_is_atomic_for_readers)
{
	struct shard_set *set = shard_set_new(tmpdir, "swapwiki");
	/* Two complete generations with different contents and shard counts. */
	fill_generation(set, "ga", 2, 20, "alpha");
	fill_generation(set, "gb", 3, 30, "beta");
	cr_assert_eq(shard_set_swap(set, "ga"), STATUS_OK);
	cr_assert_eq(shard_set_create(set, "ga", 1), STATUS_INVALID);
	cr_assert_eq(shard_set_swap(set, "gnone"), STATUS_NOT_FOUND);

	pid_t pid = fork();
	if (pid == 0) {
		/* Reader: open `current` over and over; each open must work and
		 * see exactly one whole generation. */
		struct shard_set *r = shard_set_new(tmpdir, "swapwiki");
		struct xquery *a = xquery_term("alpha", 5, 1);
		struct xquery *b = xquery_term("beta", 4, 1);
		int bad = 0;
		for (int i = 0; i < 300 && !bad; i++) {
			if (shard_set_open(r) != STATUS_OK) {
				bad = 1;
				break;
			}
			struct xmset *ma = NULL, *mb = NULL;
			if (shard_set_search(r, a, 0, 100, &ma) != STATUS_OK ||
			    shard_set_search(r, b, 0, 100, &mb) != STATUS_OK) {
				bad = 2;
			} else {
				size_t na = xmset_size(ma), nb = xmset_size(mb);
				unsigned shards = shard_set_shards(r);
				if (!((na == 20 && nb == 0 && shards == 2) ||
				      (na == 0 && nb == 30 && shards == 3)))
					bad = 3;
			}
			xmset_free(ma);
			xmset_free(mb);
		}
		xquery_free(a);
		xquery_free(b);
		shard_set_free(r);
		_exit(bad ? 10 + bad : 0);
	}
	/* Swap back and forth while the reader runs. */
	int swaps = 0;
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			cr_assert(WIFEXITED(status));
			cr_assert_eq(WEXITSTATUS(status), 0,
				     "reader failed (code %d) after %d swaps",
				     WEXITSTATUS(status), swaps);
			break;
		}
		cr_assert_eq(shard_set_swap(set, swaps % 2 ? "ga" : "gb"), STATUS_OK,
			     "%s", shard_set_errmsg(set));
		swaps++;
	}
	cr_assert_gt(swaps, 10, "too few swaps (%d) to test anything", swaps);

	char *cur;
	cr_assert_eq(shard_set_current(set, &cur), STATUS_OK);
	const char *other = strcmp(cur, "ga") == 0 ? "gb" : "ga";
	cr_assert_eq(shard_set_remove(set, cur), STATUS_INVALID);
	cr_assert_eq(shard_set_remove(set, other), STATUS_OK, "%s", shard_set_errmsg(set));
	free(cur);
	shard_set_free(set);
}

Test(shard, xapian_check_passes_on_a_written_shard)
{
	struct shard *sh = open_new("s");
	char text[256];
	for (uint64_t i = 1; i <= 200; i++) {
		snprintf(text, sizeof text, "page %llu words about check number %llu",
			 (unsigned long long)i, (unsigned long long)(i % 7));
		cr_assert_eq(put(sh, i, 1, "Checked_Page", text), STATUS_OK);
	}
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK);
	for (uint64_t i = 1; i <= 50; i++) {
		cr_assert_eq(put(sh, i, 2, "Checked_Page", "rewritten"), STATUS_OK);
		cr_assert_eq(shard_delete(sh, 100 + i), STATUS_OK);
	}
	cr_assert_eq(shard_commit(sh, 2), STATUS_OK);
	shard_free(sh);

	char *p = path_of("s");
	pid_t pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		execlp("xapian-check", "xapian-check", p, (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "xapian-check %s exited %d", p,
		     WEXITSTATUS(status));
	free(p);
}

Test(shard, reader_follows_a_swap_and_missing_things_are_not_found)
{
	struct shard_set *set = shard_set_new(tmpdir, "fwiki");
	cr_assert_eq(shard_set_open(set), STATUS_NOT_FOUND);
	cr_assert_not_null(strstr(shard_set_errmsg(set), "current"), "%s", shard_set_errmsg(set));
	char *cur;
	cr_assert_eq(shard_set_current(set, &cur), STATUS_NOT_FOUND);

	char *g1 = shard_generation_name();
	fill_generation(set, g1, 2, 6, "old");
	cr_assert_eq(shard_set_swap(set, g1), STATUS_OK);
	cr_assert_eq(shard_set_open(set), STATUS_OK);
	char *g2 = shard_generation_name();
	cr_assert_gt(strcmp(g2, g1), 0, "generation names do not sort by time");
	fill_generation(set, g2, 3, 9, "new");
	cr_assert_eq(shard_set_swap(set, g2), STATUS_OK);
	/* The open reader still sees its generation until it reopens. */
	cr_assert_str_eq(shard_set_generation(set), g1);
	cr_assert_eq(shard_set_reopen(set), STATUS_OK, "%s", shard_set_errmsg(set));
	cr_assert_str_eq(shard_set_generation(set), g2);
	cr_assert_eq(shard_set_shards(set), 3);
	const char *w[] = { "new", "page" };
	struct xquery *q = xquery_near(w, 2, 3);
	struct xmset *m;
	cr_assert_eq(shard_set_search(set, q, 0, 20, &m), STATUS_OK);
	cr_assert_eq(xmset_size(m), 9);
	xmset_free(m);
	xquery_free(q);

	unsigned n;
	cr_assert_eq(shard_set_count(set, NULL, &n), STATUS_OK);
	cr_assert_eq(n, 3);
	cr_assert_eq(shard_set_create(set, "../escape", 1), STATUS_INVALID);
	cr_assert_eq(shard_set_swap(set, "current"), STATUS_INVALID);

	struct shard *sh = shard_new();
	char *p = path_of("no-such-shard");
	cr_assert_eq(shard_open(sh, p, 0), STATUS_NOT_FOUND);
	cr_assert_eq(shard_commit(sh, 1), STATUS_INVALID);
	free(p);
	shard_free(sh);
	free(g1);
	free(g2);
	shard_set_free(set);
}
