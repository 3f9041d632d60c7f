/* SPDX-License-Identifier: MIT */
/*
 * search.c: a request -> its results, for freshet-search and
 * freshet-searchd alike.
 *
 * Invariants: a searcher's readers and analyzers belong to the thread
 * using it; every call brings the wiki's reader up to date before
 * searching (shard_set_reopen(): new commits, a swapped generation, shards
 * left out before), so no answer comes from a reader older than the call.
 * A result never hides a failed shard: the count is in the result.
 */
#include "search.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "document.h"
#include "now.h"
#include "query.h"
#include "shard.h"
#include "xmalloc.h"

#define DEFAULT_SNIPPET_BYTES 200
#define MAX_LANGS 64

struct swiki {
	const struct conf_wiki *w;
	struct shard_set *set;
	bool open;
};

struct slang {
	char *code;
	struct analyzer *an;
};

struct searcher {
	const struct conf *cfg;
	const struct loader *ld;
	unsigned flags;
	struct swiki *wikis;
	size_t n_wikis;
	struct slang *langs;
	size_t n_langs;
	char err[512];
	char code[32];
};

static void set_err(struct searcher *s, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct searcher *s, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof s->err, fmt, ap);
	va_end(ap);
	snprintf(s->code, sizeof s->code, "%s", code);
}

struct searcher *searcher_new(const struct conf *cfg, const struct loader *ld,
			      unsigned flags)
{
	struct searcher *s = xcalloc(1, sizeof *s);
	s->cfg = cfg;
	s->ld = ld;
	s->flags = flags;
	s->n_wikis = cfg->n_wikis;
	s->wikis = xcalloc(cfg->n_wikis, sizeof *s->wikis);
	for (size_t i = 0; i < cfg->n_wikis; i++) {
		s->wikis[i].w = &cfg->wikis[i];
		s->wikis[i].set = shard_set_new(cfg->data_dir, cfg->wikis[i].id);
		if (cfg->wikis[i].n_search_remotes)
			shard_set_remote(s->wikis[i].set,
					 (const char *const *)cfg->wikis[i].search_remotes,
					 (unsigned)cfg->wikis[i].n_search_remotes,
					 (unsigned)cfg->wikis[i].remote_timeout_ms);
		if (cfg->wikis[i].search_replica)
			shard_set_use_replicas(s->wikis[i].set);
		if (flags & SEARCHER_PARTIAL)
			shard_set_allow_missing(s->wikis[i].set,
						(unsigned)cfg->wikis[i].shards);
	}
	return s;
}

void searcher_free(struct searcher *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_wikis; i++)
		shard_set_free(s->wikis[i].set);
	free(s->wikis);
	for (size_t i = 0; i < s->n_langs; i++) {
		analyzer_close(s->langs[i].an);
		free(s->langs[i].code);
	}
	free(s->langs);
	free(s);
}

const char *searcher_errmsg(const struct searcher *s)
{
	return s->err;
}

const char *searcher_errcode(const struct searcher *s)
{
	return s->code;
}

static struct swiki *find_wiki(struct searcher *s, const char *id)
{
	for (size_t i = 0; i < s->n_wikis; i++)
		if (id && strcmp(s->wikis[i].w->id, id) == 0)
			return &s->wikis[i];
	set_err(s, "unknown_wiki", "no wiki '%s' is configured", id ? id : "");
	return NULL;
}

/* Opens the wiki's reader, or brings it to the newest commit. */
static enum status refresh(struct searcher *s, struct swiki *sw)
{
	enum status st = sw->open ? shard_set_reopen(sw->set)
				  : shard_set_open(sw->set);
	/* A shard that vanished under the open reader fails its reopen:
	 * open afresh, which leaves it out (SEARCHER_PARTIAL) or fails. */
	if (st != STATUS_OK && sw->open)
		st = shard_set_open(sw->set);
	sw->open = st == STATUS_OK;
	if (st != STATUS_OK)
		set_err(s, "shards_unavailable", "%s: %s", sw->w->id,
			shard_set_errmsg(sw->set));
	return st;
}

/* The searcher's analyzer for code, opened on first use. */
static struct analyzer *get_analyzer(struct searcher *s, const char *code)
{
	for (size_t i = 0; i < s->n_langs; i++)
		if (strcmp(s->langs[i].code, code) == 0)
			return s->langs[i].an;
	struct analyzer *an = NULL;
	char *msg = NULL;
	enum status st = analyzer_open(s->ld, code, NULL, &an, &msg);
	if (st != STATUS_OK) {
		set_err(s, "bad_parameter", "no analyzer for language '%s': %s",
			code, msg ? msg : status_str(st));
		free(msg);
		return NULL;
	}
	s->langs = xrealloc(s->langs, (s->n_langs + 1) * sizeof *s->langs);
	s->langs[s->n_langs].code = xstrdup(code);
	s->langs[s->n_langs].an = an;
	s->n_langs++;
	return an;
}

struct lang_list {
	char codes[MAX_LANGS][32];
	size_t n;
};

static int on_lang(void *ctx, const char *term, size_t len, uint64_t docs)
{
	struct lang_list *l = ctx;
	(void)docs;
	size_t plen = strlen(SHARD_PREFIX_LANGUAGE);
	if (len <= plen || len - plen >= sizeof l->codes[0])
		return 0;
	memcpy(l->codes[l->n], term + plen, len - plen);
	l->codes[l->n][len - plen] = '\0';
	l->n++;
	return l->n == MAX_LANGS;
}

/* Counts the words of a query: runs of characters other than spaces and
 * tabs, quotes and a leading '-' not counting. */
static bool blank(const char *q, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (q[i] != ' ' && q[i] != '\t')
			return false;
	return true;
}

static bool valid_utf8(const char *q, size_t len)
{
	json_t *j = json_stringn(q ? q : "", q ? len : 0);
	json_decref(j);
	return j != NULL;
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static void fill_shards(struct swiki *sw, bool ok, unsigned *total,
			unsigned *okc, unsigned *failed, char **why)
{
	unsigned n = shard_set_shards(sw->set);
	if (!ok || n == 0) {
		n = (unsigned)sw->w->shards;
		*total = n;
		*okc = 0;
		*failed = n;
	} else {
		*total = n;
		*failed = shard_set_failed(sw->set);
		*okc = n - *failed;
	}
	if (why && *failed)
		*why = xstrdup(shard_set_errmsg(sw->set));
}

enum status searcher_search(struct searcher *s, const struct search_request *rq,
			    struct search_result *res)
{
	int64_t t0 = now_ms();
	memset(res, 0, sizeof *res);
	s->err[0] = s->code[0] = '\0';
	struct swiki *sw = find_wiki(s, rq->wiki);
	if (!sw)
		return STATUS_NOT_FOUND;
	const char *q = rq->query ? rq->query : "";
	size_t qlen = rq->query ? rq->query_len : 0;
	if (blank(q, qlen)) {
		set_err(s, "bad_parameter", "the query is empty");
		return STATUS_INVALID;
	}
	if (!valid_utf8(q, qlen)) {
		set_err(s, "bad_parameter", "the query is not UTF-8");
		return STATUS_INVALID;
	}
	if (rq->max_query_bytes && qlen > rq->max_query_bytes) {
		set_err(s, "query_too_long", "the query has %zu bytes; at most %zu",
			qlen, rq->max_query_bytes);
		return STATUS_INVALID;
	}
	size_t words = query_count_terms(q, qlen);
	if (rq->max_terms && words > rq->max_terms) {
		set_err(s, "too_many_terms",
			"too many terms (%zu > %zu): words, phrases and exclusions count",
			words, rq->max_terms);
		return STATUS_INVALID;
	}
	/* The analyzers: one language asked for, else those of the shards. */
	struct analyzer *ans[MAX_LANGS];
	size_t n_ans = 0;
	if (rq->lang) {
		struct analyzer *an = get_analyzer(s, rq->lang);
		if (!an)
			return STATUS_INVALID;
		ans[n_ans++] = an;
	}
	enum status st = refresh(s, sw);
	bool ok = st == STATUS_OK;
	if (!ok && !(s->flags & SEARCHER_PARTIAL))
		return st;
	fill_shards(sw, ok, &res->shards_total, &res->shards_ok,
		    &res->shards_failed, &res->shard_error);
	if (!ok) {
		res->took_ms = (double)(now_ms() - t0);
		return STATUS_OK;
	}
	if (!rq->lang) {
		struct lang_list langs = { .n = 0 };
		xdb_terms(shard_set_db(sw->set), SHARD_PREFIX_LANGUAGE, MAX_LANGS,
			  on_lang, &langs);
		for (size_t i = 0; i < langs.n; i++) {
			struct analyzer *an = get_analyzer(s, langs.codes[i]);
			if (an)
				ans[n_ans++] = an;
		}
		if (n_ans == 0) {
			struct analyzer *an = get_analyzer(s, sw->w->language);
			if (!an) {
				snprintf(s->code, sizeof s->code, "search_failed");
				search_result_release(res);
				return STATUS_NOT_FOUND;
			}
			ans[n_ans++] = an;
		}
	}
	struct xquery *xq = NULL;
	char *qerr = NULL;
	/* The cap was checked above (with its own error code). */
	struct query_options qopt = { .flags = 0, .max_terms = SIZE_MAX };
	st = query_build_opts(ans, n_ans, q, qlen, &qopt, &xq, &qerr);
	if (st != STATUS_OK) {
		set_err(s, "bad_parameter", "analyzing the query: %s", qerr ? qerr : "");
		free(qerr);
		search_result_release(res);
		return STATUS_INVALID;
	}
	query_filter_namespaces(&xq, rq->ns, rq->n_ns);
	struct xmset *ms = NULL;
	if (xq) {
		struct xsearch_opts o = {
			.check_at_least = SEARCH_COUNT_EXACT,
			.time_limit_ms = rq->timeout_ms,
		};
		st = shard_set_search_opts(sw->set, xq, rq->offset, rq->limit, &o, &ms);
		xquery_free(xq);
		if (st != STATUS_OK) {
			set_err(s, "search_failed", "%s: %s", sw->w->id,
				shard_set_errmsg(sw->set));
			search_result_release(res);
			return st;
		}
		uint64_t lo, hi;
		xmset_bounds(ms, &lo, &hi);
		res->total = lo;
		res->total_exact = lo == hi;
		res->n_hits = xmset_size(ms);
	} else {
		res->total_exact = true;
	}
	res->hits = xcalloc(res->n_hits ? res->n_hits : 1, sizeof *res->hits);
	size_t sb = rq->snippet_bytes ? rq->snippet_bytes : DEFAULT_SNIPPET_BYTES;
	size_t n = 0;
	for (size_t i = 0; i < res->n_hits; i++) {
		struct xmset_hit h;
		if (xmset_hit(ms, i, &h) != STATUS_OK)
			continue;
		struct search_hit *r = &res->hits[n++];
		struct shard_data sd;
		if (shard_data_decode(h.data, h.data_len, &sd) != STATUS_OK)
			sd = (struct shard_data){ .fields = json_object(),
						  .text = "" };
		/* The fields move to the hit; the text stays the mset's. */
		r->data = sd.fields;
		r->rank = h.rank;
		r->score = h.weight;
		const char *lang = jstr(r->data, "language");
		const char *title = jstr(r->data, "title");
		r->snippet = query_snippet(ms, sd.text, sd.text_len, lang, sb,
					   rq->hi_start, rq->hi_end,
					   rq->snippet_flags);
		/* The whole title, its matches marked. */
		r->title_snippet = query_snippet(ms, title, strlen(title), lang,
						 strlen(title) + 64, rq->hi_start,
						 rq->hi_end, rq->snippet_flags);
		/* The redirect title the page was found through, judged in
		 * the page's language (the first analyzer if it has none). */
		struct analyzer *ran = *lang ? get_analyzer(s, lang) : NULL;
		r->redirect_title = query_redirect_match(ran ? ran : ans[0], q,
							 qlen, r->data);
		r->size = sd.size;
		r->word_count = sd.word_count;
	}
	res->n_hits = n;
	xmset_free(ms);
	res->took_ms = (double)(now_ms() - t0);
	return STATUS_OK;
}

void search_result_release(struct search_result *res)
{
	for (size_t i = 0; i < res->n_hits; i++) {
		json_decref(res->hits[i].data);
		free(res->hits[i].snippet);
		free(res->hits[i].title_snippet);
		free(res->hits[i].redirect_title);
	}
	free(res->hits);
	free(res->shard_error);
	memset(res, 0, sizeof *res);
}

static json_t *shards_json(unsigned total, unsigned ok, unsigned failed)
{
	json_t *o = json_object();
	json_object_set_new(o, "total", json_integer(total));
	json_object_set_new(o, "ok", json_integer(ok));
	json_object_set_new(o, "failed", json_integer(failed));
	return o;
}

static json_t *str_or_null(const char *v)
{
	return v ? json_string(v) : json_null();
}

/* Unix seconds -> "2026-12-06T00:12:00Z" (MediaWiki's API form). */
static json_t *iso_time(json_int_t t)
{
	char b[32];
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0 || !gmtime_r(&tt, &tm))
		return json_null();
	strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(b);
}

/* json_string() refuses invalid UTF-8; a snippet cut by Xapian is valid,
 * but never let a result vanish: fall back to "". */
static json_t *text_json(const char *v)
{
	json_t *j = json_string(v ? v : "");
	return j ? j : json_string("");
}

json_t *search_result_json(const struct search_result *res,
			   const struct search_request *rq)
{
	json_t *o = json_object();
	json_object_set_new(o, "query", json_stringn(rq->query ? rq->query : "",
						     rq->query ? rq->query_len : 0));
	if (!json_object_get(o, "query"))
		json_object_set_new(o, "query", json_string(""));
	json_object_set_new(o, "total", json_integer((json_int_t)res->total));
	json_object_set_new(o, "total_relation",
			    json_string(res->total_exact ? "eq" : "gte"));
	json_object_set_new(o, "shards", shards_json(res->shards_total, res->shards_ok,
						     res->shards_failed));
	json_object_set_new(o, "took_ms", json_integer((json_int_t)res->took_ms));
	json_t *arr = json_array();
	for (size_t i = 0; i < res->n_hits; i++) {
		const struct search_hit *h = &res->hits[i];
		json_t *d = h->data, *r = json_object();
		json_object_set(r, "page_id", json_object_get(d, "page_id"));
		json_object_set(r, "namespace", json_object_get(d, "namespace"));
		json_object_set_new(r, "title", json_string(jstr(d, "title")));
		json_object_set_new(r, "url", json_string(jstr(d, "url")));
		json_object_set_new(r, "language", json_string(jstr(d, "language")));
		json_object_set(r, "rev_id", json_object_get(d, "rev_id"));
		json_object_set_new(r, "timestamp",
				    iso_time(json_integer_value(
					    json_object_get(d, "rev_timestamp"))));
		json_object_set_new(r, "score", json_real(h->score));
		json_object_set_new(r, "snippet", text_json(h->snippet));
		json_object_set_new(r, "title_snippet", text_json(h->title_snippet));
		json_object_set_new(r, "redirect_title", str_or_null(h->redirect_title));
		json_object_set_new(r, "size", json_integer((json_int_t)h->size));
		json_object_set_new(r, "word_count",
				    json_integer((json_int_t)h->word_count));
		json_array_append_new(arr, r);
	}
	json_object_set_new(o, "results", arr);
	return o;
}

/* ------------------------------------------------------------ completion */

/* Title completion takes pages in rank order (the exact title, then
 * titles, then redirect titles that start with the folded query), best
 * first within a rank, until rq->limit are found.  Within a rank the
 * completion prefix terms (shard.h) give pages heaviest first, so only
 * the first few are read.  A query longer than SHARD_COMPLETION_CHARS
 * characters, or a shard of schema 3 (no prefix terms), is answered by
 * ranking every page of the first SEARCH_COMPLETE_EXPAND folded titles
 * it starts by its length instead. */

/* The pages taken so far and the walk that offers more. */
struct taker {
	struct xdb *db;
	const struct complete_request *rq;
	const char *folded;
	bool short_query; /* folded has at most SHARD_COMPLETION_CHARS chars */
	struct complete_result *res;
	uint32_t *seen; /* docids taken or refused: each is read once */
	size_t n_seen, cap_seen;
	int rank;          /* of the walk: 0 exact, 1 titles, 2 redirects */
	size_t given;      /* postings offered by the walk */
	size_t refused;    /* of them, pages not taken */
	enum status st;
};

/* The first redirect title of fields that the folded query starts. */
static char *redirect_completed(json_t *fields, int ns, const char *folded)
{
	json_t *rds = json_object_get(fields, "redirects");
	for (size_t r = 0; r < json_array_size(rds); r++) {
		const char *rt = json_string_value(json_array_get(rds, r));
		if (!rt)
			continue;
		/* Redirects keep their namespace; document.c folds the title
		 * after it. */
		const char *colon = strchr(rt, ':');
		const char *rb = colon && ns != 0 ? colon + 1 : rt;
		char *rf = document_fold_title(rb, strlen(rb));
		bool hit = strncmp(rf, folded, strlen(folded)) == 0;
		free(rf);
		if (hit)
			return xstrdup(rt);
	}
	return NULL;
}

/* Reads candidate docid's fields (value SHARD_VALUE_FIELDS, else from its
 * data: shards of schema 2) into *fields; *dead when the page is deleted
 * (then *fields is untouched). */
static enum status read_fields(struct xdb *db, uint32_t docid, bool *dead,
			       json_t **fields)
{
	char *v = NULL;
	size_t len = 0;
	enum status st = xdb_doc_value(db, docid, SHARD_VALUE_DEAD, &v, &len);
	free(v);
	if (st != STATUS_OK)
		return st;
	*dead = len > 0;
	if (*dead)
		return STATUS_OK;
	if ((st = xdb_doc_value(db, docid, SHARD_VALUE_FIELDS, &v, &len)) !=
	    STATUS_OK)
		return st;
	if (len) {
		*fields = json_loadb(v, len, 0, NULL);
		free(v);
		return STATUS_OK;
	}
	free(v);
	if ((st = xdb_doc_data(db, docid, &v, &len)) != STATUS_OK)
		return st;
	struct shard_data sd;
	*fields = NULL;
	if (shard_data_decode(v, len, &sd) == STATUS_OK)
		*fields = sd.fields;
	free(v);
	return STATUS_OK;
}

static bool ns_wanted(const struct complete_request *rq, int ns)
{
	for (size_t i = 0; i < rq->n_ns; i++)
		if (rq->ns[i] == ns)
			return true;
	return rq->n_ns == 0;
}

/* Takes page docid as the next hit unless it was seen, is deleted or is
 * in a namespace not asked for.  Returns non-zero when the walk should
 * stop: the limit reached, an error (t->st), or SEARCH_COMPLETE_EXPAND
 * pages refused. */
static int take(struct taker *t, uint32_t docid)
{
	for (size_t i = 0; i < t->n_seen; i++)
		if (t->seen[i] == docid)
			return 0;
	if (t->n_seen == t->cap_seen) {
		t->cap_seen = t->cap_seen ? 2 * t->cap_seen : 32;
		t->seen = xrealloc(t->seen, t->cap_seen * sizeof *t->seen);
	}
	t->seen[t->n_seen++] = docid;
	bool dead = false;
	json_t *d = NULL;
	if ((t->st = read_fields(t->db, docid, &dead, &d)) != STATUS_OK)
		return 1;
	int ns = d ? (int)json_integer_value(json_object_get(d, "namespace"))
		   : 0;
	if (dead || !d || !ns_wanted(t->rq, ns)) {
		json_decref(d);
		return ++t->refused >= SEARCH_COMPLETE_EXPAND;
	}
	struct complete_hit *out = &t->res->hits[t->res->n_hits++];
	out->page_id =
		(uint64_t)json_integer_value(json_object_get(d, "page_id"));
	out->title = xstrdup(jstr(d, "title"));
	out->url = xstrdup(jstr(d, "url"));
	/* Found through a redirect: name the first redirect title the prefix
	 * starts. */
	if (t->rank == 2)
		out->redirect_title = redirect_completed(d, ns, t->folded);
	json_decref(d);
	return t->res->n_hits == t->rq->limit;
}

static int on_take(void *ctx, const char *term, size_t len, uint32_t docid,
		   uint64_t doclen)
{
	struct taker *t = ctx;
	(void)term;
	(void)len;
	(void)doclen;
	t->given++;
	return take(t, docid);
}

struct candidate {
	uint64_t length; /* document length (terms): the page-weight signal */
	uint32_t docid;
};

/* The candidates of a walk over the postings of the expanded prefixes. */
struct cand_walk {
	struct candidate *v;
	size_t n, cap;
	const char *exact; /* when set, only this term */
};

static int on_candidate(void *ctx, const char *term, size_t len,
			uint32_t docid, uint64_t doclen)
{
	struct cand_walk *w = ctx;
	if (w->exact && (len != strlen(w->exact) || memcmp(term, w->exact, len)))
		return 1; /* past the exact term */
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 64;
		w->v = xrealloc(w->v, w->cap * sizeof *w->v);
	}
	w->v[w->n++] = (struct candidate){ .length = doclen, .docid = docid };
	return 0;
}

static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	if (x->length != y->length)
		return x->length > y->length ? -1 : 1;
	return x->docid < y->docid ? -1 : x->docid > y->docid;
}

/* Offers t the pages of the postings of the terms under prefix (only
 * the term itself when exact), ranked by their length, the heaviest
 * first. */
static void offer_ranked(struct taker *t, const char *prefix, bool exact)
{
	struct cand_walk w = { .exact = exact ? prefix : NULL };
	t->st = xdb_postings(t->db, prefix, exact ? 1 : SEARCH_COMPLETE_EXPAND,
			     on_candidate, &w);
	if (t->st == STATUS_OK && w.n)
		qsort(w.v, w.n, sizeof *w.v, cmp_candidate);
	for (size_t i = 0; t->st == STATUS_OK && i < w.n; i++)
		if (take(t, w.v[i].docid))
			break;
	free(w.v);
}

/* Offers t the pages under prefix + t->folded at rank t->rank, heaviest
 * first: through the completion prefix terms (cprefix) when the query is
 * short enough and the shards hold them, else by ranking the pages of
 * the folded titles (fprefix) by length. */
static void offer(struct taker *t, const char *cprefix, const char *fprefix)
{
	t->given = 0;
	t->refused = 0;
	if (t->short_query) {
		char *p = xasprintf("%s%s" SHARD_COMPLETION_SEP, cprefix,
				    t->folded);
		t->st = xdb_postings(t->db, p, SEARCH_COMPLETE_EXPAND, on_take,
				     t);
		free(p);
		if (t->st != STATUS_OK || t->given)
			return;
	}
	char *p = xasprintf("%s%s", fprefix, t->folded);
	offer_ranked(t, p, false);
	free(p);
}

/* One completion on the open reader db. */
static enum status complete_in(struct xdb *db,
			       const struct complete_request *rq,
			       const char *folded, struct complete_result *res)
{
	res->hits = xcalloc(rq->limit ? rq->limit : 1, sizeof *res->hits);
	size_t chars = 0;
	for (const char *p = folded; *p; p++)
		chars += ((unsigned char)*p & 0xC0) != 0x80;
	struct taker t = {
		.db = db,
		.rq = rq,
		.folded = folded,
		.res = res,
		.short_query = chars <= SHARD_COMPLETION_CHARS,
		.st = STATUS_OK,
	};
	char *exact = xasprintf("%s%s", SHARD_PREFIX_TITLE_FOLDED, folded);
	offer_ranked(&t, exact, true);
	free(exact);
	if (t.st == STATUS_OK && res->n_hits < rq->limit) {
		t.rank = 1;
		offer(&t, SHARD_PREFIX_TITLE_PREFIX, SHARD_PREFIX_TITLE_FOLDED);
	}
	if (t.st == STATUS_OK && res->n_hits < rq->limit) {
		t.rank = 2;
		offer(&t, SHARD_PREFIX_REDIRECT_PREFIX,
		      SHARD_PREFIX_REDIRECT_COMPLETION);
	}
	free(t.seen);
	return t.st;
}

enum status searcher_complete(struct searcher *s,
			      const struct complete_request *rq,
			      struct complete_result *res)
{
	memset(res, 0, sizeof *res);
	s->err[0] = s->code[0] = '\0';
	struct swiki *sw = find_wiki(s, rq->wiki);
	if (!sw)
		return STATUS_NOT_FOUND;
	size_t qlen = rq->query ? rq->query_len : 0;
	if (rq->max_query_bytes && qlen > rq->max_query_bytes) {
		set_err(s, "query_too_long", "the query has %zu bytes; at most %zu",
			qlen, rq->max_query_bytes);
		return STATUS_INVALID;
	}
	if (!valid_utf8(rq->query, qlen)) {
		set_err(s, "bad_parameter", "the query is not UTF-8");
		return STATUS_INVALID;
	}
	char *folded = document_fold_title(rq->query ? rq->query : "", qlen);
	if (!*folded) {
		free(folded);
		set_err(s, "bad_parameter", "the query is empty");
		return STATUS_INVALID;
	}
	enum status st = refresh(s, sw);
	bool ok = st == STATUS_OK;
	if (!ok && !(s->flags & SEARCHER_PARTIAL)) {
		free(folded);
		return st;
	}
	fill_shards(sw, ok, &res->shards_total, &res->shards_ok,
		    &res->shards_failed, NULL);
	if (!ok || rq->limit == 0) {
		free(folded);
		return STATUS_OK;
	}
	st = complete_in(shard_set_db(sw->set), rq, folded, res);
	/* A writer committed twice since the refresh (once more on the
	 * newest commit), or a remote died since the open (open afresh,
	 * which leaves it out, as shard_set_search() does). */
	if ((st == STATUS_MODIFIED && shard_set_reopen(sw->set) == STATUS_OK) ||
	    (st == STATUS_TRANSIENT && (s->flags & SEARCHER_PARTIAL) &&
	     shard_set_open(sw->set) == STATUS_OK)) {
		complete_result_release(res);
		fill_shards(sw, true, &res->shards_total, &res->shards_ok,
			    &res->shards_failed, NULL);
		st = complete_in(shard_set_db(sw->set), rq, folded, res);
	}
	free(folded);
	if (st != STATUS_OK) {
		set_err(s, "search_failed", "%s: %s", sw->w->id,
			xdb_errmsg(shard_set_db(sw->set)));
		complete_result_release(res);
		return st;
	}
	return STATUS_OK;
}

void complete_result_release(struct complete_result *res)
{
	for (size_t i = 0; i < res->n_hits; i++) {
		free(res->hits[i].title);
		free(res->hits[i].url);
		free(res->hits[i].redirect_title);
	}
	free(res->hits);
	memset(res, 0, sizeof *res);
}

json_t *complete_result_json(const struct complete_result *res,
			     const struct complete_request *rq)
{
	json_t *o = json_object();
	json_t *qs = json_stringn(rq->query ? rq->query : "",
				  rq->query ? rq->query_len : 0);
	json_object_set_new(o, "query", qs ? qs : json_string(""));
	json_t *arr = json_array();
	for (size_t i = 0; i < res->n_hits; i++) {
		json_t *r = json_object();
		json_object_set_new(r, "page_id",
				    json_integer((json_int_t)res->hits[i].page_id));
		json_object_set_new(r, "title", text_json(res->hits[i].title));
		json_object_set_new(r, "url", text_json(res->hits[i].url));
		json_object_set_new(r, "redirect_title",
				    str_or_null(res->hits[i].redirect_title));
		json_array_append_new(arr, r);
	}
	json_object_set_new(o, "results", arr);
	return o;
}

/* ---------------------------------------------------------------- health */

enum status searcher_check(struct searcher *s, const char *wiki,
			   unsigned *total, unsigned *failed)
{
	struct swiki *sw = find_wiki(s, wiki);
	if (!sw)
		return STATUS_NOT_FOUND;
	enum status st = refresh(s, sw);
	unsigned ok;
	fill_shards(sw, st == STATUS_OK, total, &ok, failed, NULL);
	return st;
}

uint64_t searcher_opens(const struct searcher *s, const char *wiki)
{
	for (size_t i = 0; i < s->n_wikis; i++)
		if (strcmp(s->wikis[i].w->id, wiki) == 0)
			return shard_set_opens(s->wikis[i].set);
	return 0;
}
