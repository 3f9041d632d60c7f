/* SPDX-License-Identifier: MIT */
/*
 * query.c: parses query text into word groups, phrases and exclusions and
 * builds their Xapian query over the prefixes document.c writes.
 *
 * Invariant: every term a query names is a prefix of shard.h followed by a
 * term the analyzer gave for the query text, so a query term exists in the
 * shards exactly when document.c wrote it for some document.  Queries are
 * built bottom-up with combine(), which frees the parts it joins; a NULL
 * part means "no query" and is skipped.  The shim returns NULL only when
 * out of memory, which aborts here (xmalloc.h's rule).
 */
#include "query.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "buf.h"
#include "language.h"
#include "shard.h"
#include "xmalloc.h"

/* Returns q, or aborts when the shim ran out of memory (q NULL). */
static struct xquery *need(struct xquery *q)
{
	if (!q) {
		fprintf(stderr, "freshet: out of memory building a query\n");
		abort();
	}
	return q;
}

/* Returns q with its weight multiplied by factor; frees q. */
static struct xquery *scale(struct xquery *q, double factor)
{
	if (factor == 1.0)
		return q;
	struct xquery *s = need(xquery_scale(q, factor));
	xquery_free(q);
	return s;
}

/* Returns prefix+term as a query term with weight factor (1 = unscaled). */
static struct xquery *pterm(const char *prefix, const char *term, double factor)
{
	char *t = xasprintf("%s%s", prefix, term);
	struct xquery *q = need(xquery_term(t, strlen(t), 1));
	free(t);
	return scale(q, factor);
}

/* *acc = *acc OP q; frees q.  A NULL *acc takes q; a NULL q changes
 * nothing. */
static void combine(struct xquery **acc, enum xquery_op op, struct xquery *q)
{
	if (!q)
		return;
	if (!*acc) {
		*acc = q;
		return;
	}
	struct xquery *c = need(xquery_combine(op, *acc, q));
	xquery_free(*acc);
	xquery_free(q);
	*acc = c;
}

/* Builds the AND of word groups for loose text (see query.h).  Returns
 * NULL when the text has no term at all, or when the analyzer failed
 * (*st says which). */
static struct xquery *words_query(struct analyzer *an, const char *text,
				  size_t len, enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	struct xquery *all = NULL;
	/* Groups by word position: a position has a plain form and, unless
	 * it is a stopword, a stemmed one. */
	for (size_t i = 0; i < plain.count; i++) {
		uint32_t pos = plain.v[i].pos;
		if (i > 0 && plain.v[i - 1].pos == pos)
			continue; /* handled with the first term at this position */
		struct xquery *g = NULL;
		for (size_t j = i; j < plain.count && plain.v[j].pos == pos; j++) {
			const char *t = plain.v[j].term;
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_BODY, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE, t,
						     QUERY_TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_REDIRECT, t,
						     QUERY_TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_HEADING, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_AUX, t, 1));
		}
		for (size_t j = 0; j < stem.count; j++) {
			if (stem.v[j].pos != pos)
				continue;
			const char *t = stem.v[j].term;
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_STEM, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE_STEM, t,
						     QUERY_TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_REDIRECT_STEM, t,
						     QUERY_TITLE_WEIGHT));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_HEADING_STEM, t, 1));
			combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_AUX_STEM, t, 1));
		}
		combine(&all, XQUERY_AND, g);
	}
	/* A stemmed term whose position has no plain term (a plugin that
	 * emits only stems) still counts as a word. */
	for (size_t j = 0; j < stem.count; j++) {
		bool seen = false;
		for (size_t i = 0; i < plain.count && !seen; i++)
			seen = plain.v[i].pos == stem.v[j].pos;
		if (seen)
			continue;
		struct xquery *g = NULL;
		combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_STEM, stem.v[j].term, 1));
		combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_TITLE_STEM, stem.v[j].term,
					     QUERY_TITLE_WEIGHT));
		combine(&g, XQUERY_OR, pterm(SHARD_PREFIX_REDIRECT_STEM,
					     stem.v[j].term, QUERY_TITLE_WEIGHT));
		combine(&all, XQUERY_AND, g);
	}
	analyzer_terms_release(&stem);
	analyzer_terms_release(&plain);
	return all;
}

/* A phrase: the plain terms in order, adjacent, in the body, the title or
 * a redirect title.  NULL as words_query(). */
static struct xquery *phrase_query(struct analyzer *an, const char *text,
				   size_t len, enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	analyzer_terms_release(&stem);
	if (plain.count == 0)
		return NULL;
	struct xquery *q = NULL;
	const char *prefixes[] = { SHARD_PREFIX_BODY, SHARD_PREFIX_TITLE,
				   SHARD_PREFIX_REDIRECT };
	for (size_t k = 0; k < 3; k++) {
		char **terms = xcalloc(plain.count, sizeof(char *));
		for (size_t i = 0; i < plain.count; i++)
			terms[i] = xasprintf("%s%s", prefixes[k], plain.v[i].term);
		struct xquery *p;
		if (plain.count == 1)
			p = xquery_term(terms[0], strlen(terms[0]), 1);
		else
			p = xquery_phrase((const char *const *)terms, plain.count, 0);
		for (size_t i = 0; i < plain.count; i++)
			free(terms[i]);
		free(terms);
		need(p);
		if (k > 0)
			p = scale(p, QUERY_TITLE_WEIGHT);
		combine(&q, XQUERY_OR, p);
	}
	analyzer_terms_release(&plain);
	return q;
}

/* Parses s (NUL-terminated) with one analyzer into the query of its
 * positive parts (*pos) and of its exclusions (*neg), either NULL when
 * there is none.  On failure returns the analyzer's status with both
 * NULL. */
static enum status parse(struct analyzer *an, const char *s,
			 struct xquery **pos_out, struct xquery **neg_out)
{
	struct xquery *pos = NULL, *neg = NULL;
	struct buf loose = BUF_INIT;
	enum status st = STATUS_OK;
	const char *p = s;
	while (*p && st == STATUS_OK) {
		bool minus = false;
		if (*p == '-' && (p == s || p[-1] == ' ' || p[-1] == '\t') &&
		    p[1] && p[1] != ' ') {
			minus = true;
			p++;
		}
		if (*p == '"') {
			const char *end = strchr(p + 1, '"');
			size_t len = end ? (size_t)(end - p - 1) : strlen(p + 1);
			struct xquery *q = phrase_query(an, p + 1, len, &st);
			combine(minus ? &neg : &pos, minus ? XQUERY_OR : XQUERY_AND, q);
			p = end ? end + 1 : p + 1 + len;
			continue;
		}
		size_t len = strcspn(p, " \t\"");
		if (minus) {
			struct xquery *q = words_query(an, p, len, &st);
			combine(&neg, XQUERY_OR, q);
		} else {
			/* Loose words are analyzed together, as one text. */
			buf_add(&loose, p, len);
			buf_addch(&loose, ' ');
		}
		p += len;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (st == STATUS_OK && loose.len) {
		struct xquery *q = words_query(an, loose.data, loose.len, &st);
		combine(&pos, XQUERY_AND, q);
	}
	buf_release(&loose);
	if (st != STATUS_OK) {
		xquery_free(pos);
		xquery_free(neg);
		pos = neg = NULL;
	}
	*pos_out = pos;
	*neg_out = neg;
	return st;
}

enum status query_build_multi(struct analyzer *const *an, size_t n,
			      const char *text, size_t len, unsigned flags,
			      struct xquery **out, char **errmsg)
{
	if (n == 0 || flags != 0) {
		if (errmsg)
			*errmsg = xstrdup(n == 0 ? "query_build: no analyzer"
					  : "query_build: unknown flag");
		return STATUS_INVALID;
	}
	char *s = xstrndup(text, len);
	struct xquery *pos = NULL, *neg = NULL;
	enum status st = STATUS_OK;
	for (size_t i = 0; i < n && st == STATUS_OK; i++) {
		struct xquery *p, *m;
		st = parse(an[i], s, &p, &m);
		if (st != STATUS_OK) {
			if (errmsg)
				*errmsg = xstrdup(analyzer_errmsg(an[i]));
			break;
		}
		combine(&pos, XQUERY_OR, p);
		combine(&neg, XQUERY_OR, m);
	}
	free(s);
	if (st != STATUS_OK || !pos) {
		xquery_free(pos);
		xquery_free(neg);
		if (st == STATUS_OK)
			*out = NULL;
		return st;
	}
	combine(&pos, XQUERY_AND_NOT, neg);
	*out = pos;
	return STATUS_OK;
}

enum status query_build(struct analyzer *an, const char *text, size_t len,
			unsigned flags, struct xquery **out, char **errmsg)
{
	return query_build_multi(&an, 1, text, len, flags, out, errmsg);
}

void query_filter_namespaces(struct xquery **q, const int *ns, size_t n)
{
	if (!*q || n == 0)
		return;
	struct xquery *f = NULL;
	for (size_t i = 0; i < n; i++) {
		char num[16];
		snprintf(num, sizeof num, "%d", ns[i]);
		combine(&f, XQUERY_OR, pterm(SHARD_PREFIX_NAMESPACE, num, 1));
	}
	struct xquery *r = need(xquery_combine(XQUERY_FILTER, *q, f));
	xquery_free(*q);
	xquery_free(f);
	*q = r;
}

/* Undoes the HTML escaping Xapian's snippet generator applies (&amp; &lt;
 * &gt; &quot; &#39;), in place. */
static void html_unescape(char *s)
{
	static const struct { const char *ent; char c; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&#39;", '\'' }, { "&#x27;", '\'' },
	};
	char *w = s;
	for (const char *r = s; *r;) {
		size_t k = 0, n = sizeof ents / sizeof ents[0];
		if (*r == '&')
			for (; k < n; k++)
				if (strncmp(r, ents[k].ent, strlen(ents[k].ent)) == 0)
					break;
		if (*r == '&' && k < n) {
			*w++ = ents[k].c;
			r += strlen(ents[k].ent);
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

char *query_snippet(struct xmset *ms, const char *text, size_t len,
		    const char *language, size_t max_len,
		    const char *hi_start, const char *hi_end, unsigned flags)
{
	const struct language *l = language_find(language);
	const char *stemmer = l && l->stemmer ? l->stemmer : "";
	char *snip = NULL;
	enum status st = xmset_snippet(ms, text, len, max_len, stemmer,
				       hi_start, hi_end, &snip);
	/* Xapian knows fewer Snowball stemmers than the plugins use (greek,
	 * hindi, serbian and yiddish came later): exact words then. */
	if (st == STATUS_INVALID && *stemmer)
		st = xmset_snippet(ms, text, len, max_len, "", hi_start, hi_end,
				   &snip);
	if (st != STATUS_OK || !snip)
		return xstrdup("");
	if (!(flags & QUERY_SNIPPET_HTML))
		html_unescape(snip);
	return snip;
}

/* True when term is in the list. */
static bool has_term(const struct analyzer_terms *l, const char *term)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->v[i].term, term) == 0)
			return true;
	return false;
}

/* The number of the query's words (word positions of q_plain and q_stem)
 * that title holds in either view; -1 when the analyzer fails. */
static int words_in(struct analyzer *an, const struct analyzer_terms *q_stem,
		    const struct analyzer_terms *q_plain, const char *title)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	if (analyzer_query_terms(an, title, strlen(title), &stem, &plain) != STATUS_OK)
		return -1;
	int n = 0;
	for (size_t i = 0; i < q_plain->count; i++) {
		uint32_t pos = q_plain->v[i].pos;
		if (i > 0 && q_plain->v[i - 1].pos == pos)
			continue;
		bool hit = false;
		for (size_t j = i; !hit && j < q_plain->count && q_plain->v[j].pos == pos; j++)
			hit = has_term(&plain, q_plain->v[j].term);
		for (size_t j = 0; !hit && j < q_stem->count; j++)
			hit = q_stem->v[j].pos == pos && has_term(&stem, q_stem->v[j].term);
		n += hit;
	}
	analyzer_terms_release(&stem);
	analyzer_terms_release(&plain);
	return n;
}

char *query_redirect_match(struct analyzer *an, const char *text, size_t len,
			   const char *data, size_t data_len)
{
	json_t *d = json_loadb(data, data_len, 0, NULL);
	json_t *rds = json_object_get(d, "redirects");
	const char *title = json_string_value(json_object_get(d, "title"));
	char *best = NULL;
	struct analyzer_terms q_stem = { 0 }, q_plain = { 0 };
	if (!json_array_size(rds) ||
	    analyzer_query_terms(an, text, strnlen(text, len), &q_stem,
				 &q_plain) != STATUS_OK) {
		json_decref(d);
		return NULL;
	}
	int best_n = title ? words_in(an, &q_stem, &q_plain, title) : 0;
	for (size_t i = 0; best_n >= 0 && i < json_array_size(rds); i++) {
		const char *rt = json_string_value(json_array_get(rds, i));
		if (!rt)
			continue;
		int n = words_in(an, &q_stem, &q_plain, rt);
		if (n > best_n) {
			best_n = n;
			free(best);
			best = xstrdup(rt);
		}
	}
	if (best_n < 0) {
		free(best);
		best = NULL;
	}
	analyzer_terms_release(&q_stem);
	analyzer_terms_release(&q_plain);
	json_decref(d);
	return best;
}
