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

/* A growing list of queries, joined at once by qlist_join(). */
struct qlist {
	struct xquery **v;
	size_t n, cap;
};

/* Appends q (owned by the list from now on); NULL is skipped. */
static void qlist_add(struct qlist *l, struct xquery *q)
{
	if (!q)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 8;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = q;
}

/* Returns the op (XQUERY_AND or XQUERY_OR) of every query of l, NULL when
 * l is empty, and empties l. */
static struct xquery *qlist_join(struct qlist *l, enum xquery_op op)
{
	struct xquery *q = NULL;
	if (l->n == 1)
		q = l->v[0];
	else if (l->n > 1)
		q = need(xquery_combine_n(
			op, (const struct xquery *const *)l->v, l->n));
	for (size_t i = 0; l->n > 1 && i < l->n; i++)
		xquery_free(l->v[i]);
	free(l->v);
	*l = (struct qlist){ 0 };
	return q;
}

/* A set of strings (the weighted terms already added), open addressing. */
struct strset {
	char **v;
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Adds key (copied) to the set; returns false when it was there. */
static bool strset_add(struct strset *set, const char *key)
{
	if (2 * (set->n + 1) > set->cap) {
		struct strset big = { xcalloc(set->cap ? 2 * set->cap : 64,
					      sizeof(char *)),
				      set->cap ? 2 * set->cap : 64, 0 };
		for (size_t i = 0; i < set->cap; i++)
			if (set->v[i]) {
				size_t k = hash_str(set->v[i]) & (big.cap - 1);
				while (big.v[k])
					k = (k + 1) & (big.cap - 1);
				big.v[k] = set->v[i];
				big.n++;
			}
		free(set->v);
		*set = big;
	}
	size_t k = hash_str(key) & (set->cap - 1);
	for (; set->v[k]; k = (k + 1) & (set->cap - 1))
		if (strcmp(set->v[k], key) == 0)
			return false;
	set->v[k] = xstrdup(key);
	set->n++;
	return true;
}

static void strset_release(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->v[i]);
	free(set->v);
}

/* The fields a word is looked up in, plain and stemmed prefixes. */
static const struct field {
	const char *plain, *stem;
	double weight;
} fields[] = {
	{ SHARD_PREFIX_BODY, SHARD_PREFIX_STEM, 1 },
	{ SHARD_PREFIX_TITLE, SHARD_PREFIX_TITLE_STEM, QUERY_TITLE_WEIGHT },
	{ SHARD_PREFIX_HEADING, SHARD_PREFIX_HEADING_STEM, 1 },
	{ SHARD_PREFIX_AUX, SHARD_PREFIX_AUX_STEM, 1 },
	{ SHARD_PREFIX_REDIRECT, SHARD_PREFIX_REDIRECT_STEM, QUERY_TITLE_WEIGHT },
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* What a query is built into while the languages are analyzed in turn. */
struct build {
	struct qlist weight; /* the weighted terms and phrases (deduplicated) */
	struct strset seen;  /* keys of what weight holds */
	struct qlist stems;  /* this language's weighted stems */
	/* One language: the match side carries the weights itself (a term
	 * met again weighs 0) and weight stays empty, so that each posting
	 * list is opened once instead of once per side. */
	bool one_tree;
};

/* Returns "this language's documents": L<code> or L<code>-<region>
 * (a page in de-ch was analyzed by the de analyzer).  Caller frees. */
static struct xquery *language_filter(const char *code)
{
	struct qlist l = { 0 };
	qlist_add(&l, pterm(SHARD_PREFIX_LANGUAGE, code, 1));
	char *pre = xasprintf("%s%s-", SHARD_PREFIX_LANGUAGE, code);
	qlist_add(&l, need(xquery_prefix(pre)));
	free(pre);
	return qlist_join(&l, XQUERY_OR);
}

/* Returns q restricted to the documents of lf (borrowed); frees q. */
static struct xquery *restrict_to(struct xquery *q, const struct xquery *lf)
{
	if (!q)
		return NULL;
	struct xquery *r = need(xquery_combine(XQUERY_FILTER, q, lf));
	xquery_free(q);
	return r;
}

/* Returns the match-side group of one word (its plain terms plain[0..np)
 * in every field, or its stemmed terms stem[0..ns) in every field of a
 * document of lf), and adds their weighted forms to b (when b is not
 * NULL: exclusions weigh nothing).  With xstems not NULL (exclusions) the
 * stemmed terms go there instead, for one language filter over all of
 * them: a filter per word would cost its lookup per word. */
static struct xquery *word_group(const struct analyzer_term *plain, size_t np,
				 const struct analyzer_term *stem, size_t ns,
				 const char *code, const struct xquery *lf,
				 struct build *b, struct qlist *xstems)
{
	struct qlist g = { 0 }, st = { 0 };
	bool one = b && b->one_tree;
	for (size_t i = 0; i < np; i++)
		for (size_t f = 0; f < N_FIELDS; f++) {
			char *key = xasprintf("P%s%s", fields[f].plain,
					      plain[i].term);
			bool first = b && strset_add(&b->seen, key);
			free(key);
			double w = fields[f].weight;
			qlist_add(&g, pterm(fields[f].plain, plain[i].term,
					    one ? (first ? w : 0) : 1));
			if (first && !one)
				qlist_add(&b->weight, pterm(fields[f].plain,
							    plain[i].term, w));
		}
	for (size_t i = 0; i < ns; i++)
		for (size_t f = 0; f < N_FIELDS; f++) {
			char *key = xasprintf("Z%s %s%s", code, fields[f].stem,
					      stem[i].term);
			bool first = b && strset_add(&b->seen, key);
			free(key);
			double w = QUERY_STEM_WEIGHT * fields[f].weight;
			qlist_add(&st, pterm(fields[f].stem, stem[i].term,
					     one ? (first ? w : 0) : 1));
			if (first && !one)
				qlist_add(&b->stems, pterm(fields[f].stem,
							   stem[i].term, w));
		}
	if (xstems)
		qlist_add(xstems, qlist_join(&st, XQUERY_OR));
	else
		qlist_add(&g, restrict_to(qlist_join(&st, XQUERY_OR), lf));
	return qlist_join(&g, XQUERY_OR);
}

/* Returns the AND of the word groups of loose text (see query.h) analyzed
 * with an, NULL when the text has no term, or when the analyzer failed
 * (*st says which).  Weighted forms go to b as word_group(). */
static struct xquery *words_query(struct analyzer *an, const char *text,
				  size_t len, const struct xquery *lf,
				  struct build *b, struct qlist *xstems,
				  enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	const char *code = analyzer_language(an);
	struct qlist all = { 0 };
	/* Groups by word position: a position has a plain form and, unless
	 * it is a stopword, a stemmed one; a plugin may also emit a stem
	 * alone.  Both lists come in position order (the plugin ABI), so one
	 * merge pass pairs them. */
	size_t i = 0, j = 0;
	while (i < plain.count || j < stem.count) {
		uint32_t pos;
		if (j == stem.count ||
		    (i < plain.count && plain.v[i].pos <= stem.v[j].pos))
			pos = plain.v[i].pos;
		else
			pos = stem.v[j].pos;
		size_t i0 = i, j0 = j;
		while (i < plain.count && plain.v[i].pos == pos)
			i++;
		while (j < stem.count && stem.v[j].pos == pos)
			j++;
		/* A list with no term may have no array (a query of
		 * stopwords has no stems): no offset on a null pointer. */
		qlist_add(&all, word_group(i > i0 ? plain.v + i0 : NULL, i - i0,
					   j > j0 ? stem.v + j0 : NULL, j - j0,
					   code, lf, b, xstems));
	}
	analyzer_terms_release(&stem);
	analyzer_terms_release(&plain);
	return qlist_join(&all, XQUERY_AND);
}

/* A phrase: the plain terms in order, adjacent, in the body, the title or
 * a redirect title (those two weighted QUERY_TITLE_WEIGHT when weighted is
 * true).  NULL as
 * words_query(). */
static struct xquery *phrase_terms(const struct analyzer_terms *plain,
				   bool weighted)
{
	struct qlist q = { 0 };
	const char *prefixes[] = { SHARD_PREFIX_BODY, SHARD_PREFIX_TITLE,
				   SHARD_PREFIX_REDIRECT };
	for (size_t k = 0; k < 3; k++) {
		char **terms = xcalloc(plain->count, sizeof(char *));
		for (size_t i = 0; i < plain->count; i++)
			terms[i] = xasprintf("%s%s", prefixes[k],
					     plain->v[i].term);
		struct xquery *p;
		if (plain->count == 1)
			p = xquery_term(terms[0], strlen(terms[0]), 1);
		else
			p = xquery_phrase((const char *const *)terms,
					  plain->count, 0);
		for (size_t i = 0; i < plain->count; i++)
			free(terms[i]);
		free(terms);
		need(p);
		if (k >= 1 && weighted)
			p = scale(p, QUERY_TITLE_WEIGHT);
		qlist_add(&q, p);
	}
	return qlist_join(&q, XQUERY_OR);
}

/* The phrase text analyzed with an; its weighted form goes to b (when not
 * NULL) unless an earlier language gave the same terms. */
static struct xquery *phrase_query(struct analyzer *an, const char *text,
				   size_t len, struct build *b, enum status *st)
{
	struct analyzer_terms stem = { 0 }, plain = { 0 };
	*st = analyzer_query_terms(an, text, len, &stem, &plain);
	if (*st != STATUS_OK)
		return NULL;
	analyzer_terms_release(&stem);
	if (plain.count == 0)
		return NULL;
	bool first = false;
	if (b) {
		struct buf key = BUF_INIT;
		buf_addch(&key, '"');
		for (size_t i = 0; i < plain.count; i++) {
			buf_adds(&key, plain.v[i].term);
			buf_addch(&key, ' ');
		}
		first = strset_add(&b->seen, key.data);
		buf_release(&key);
	}
	struct xquery *q;
	if (b && b->one_tree) {
		q = phrase_terms(&plain, true);
		if (!first)
			q = scale(q, 0);
	} else {
		q = phrase_terms(&plain, false);
		if (first)
			qlist_add(&b->weight, phrase_terms(&plain, true));
	}
	analyzer_terms_release(&plain);
	return q;
}

/* One word or phrase of the query text, as query.h's syntax cuts it. */
struct item {
	const char *p; /* into the text */
	size_t len;
	bool minus;  /* an exclusion */
	bool phrase; /* a quoted phrase (p, len: inside the quotes) */
};

/* Cuts s (NUL-terminated) into its items; sets *n.  Caller frees. */
static struct item *split(const char *s, size_t *n)
{
	struct item *v = NULL;
	size_t count = 0, cap = 0;
	const char *p = s;
	while (*p) {
		struct item it = { 0 };
		if (*p == '-' && (p == s || p[-1] == ' ' || p[-1] == '\t') &&
		    p[1] && p[1] != ' ') {
			it.minus = true;
			p++;
		}
		if (*p == '"') {
			const char *end = strchr(p + 1, '"');
			it.p = p + 1;
			it.len = end ? (size_t)(end - p - 1) : strlen(p + 1);
			it.phrase = true;
			p = end ? end + 1 : p + 1 + it.len;
		} else {
			it.p = p;
			it.len = strcspn(p, " \t\"");
			p += it.len;
			while (*p == ' ' || *p == '\t')
				p++;
		}
		if (it.len == 0)
			continue;
		if (count == cap) {
			cap = cap ? 2 * cap : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[count++] = it;
	}
	*n = count;
	return v;
}

/* Builds, with one analyzer, the match side of the items' positive parts
 * (*pos) and of their exclusions (*neg), either NULL when there is none,
 * and adds the weighted forms of the positive parts to b.  On failure
 * returns the analyzer's status with both NULL. */
static enum status parse(struct analyzer *an, const struct item *items,
			 size_t n, struct build *b, struct xquery **pos_out,
			 struct xquery **neg_out)
{
	struct qlist pos = { 0 }, neg = { 0 }, xstems = { 0 };
	struct buf loose = BUF_INIT;
	enum status st = STATUS_OK;
	struct xquery *lf = language_filter(analyzer_language(an));
	for (size_t i = 0; i < n && st == STATUS_OK; i++) {
		const struct item *it = &items[i];
		if (it->phrase)
			qlist_add(it->minus ? &neg : &pos,
				  phrase_query(an, it->p, it->len,
					       it->minus ? NULL : b, &st));
		else if (it->minus)
			qlist_add(&neg, words_query(an, it->p, it->len, lf,
						    NULL, &xstems, &st));
		else {
			/* Loose words are analyzed together, as one text. */
			buf_add(&loose, it->p, it->len);
			buf_addch(&loose, ' ');
		}
	}
	if (st == STATUS_OK && loose.len)
		qlist_add(&pos, words_query(an, loose.data, loose.len, lf, b,
					    NULL, &st));
	qlist_add(&neg, restrict_to(qlist_join(&xstems, XQUERY_OR), lf));
	buf_release(&loose);
	/* This language's stems weigh only on this language's documents. */
	qlist_add(&b->weight,
		  restrict_to(qlist_join(&b->stems, XQUERY_OR), lf));
	xquery_free(lf);
	struct xquery *p = qlist_join(&pos, XQUERY_AND);
	struct xquery *m = qlist_join(&neg, XQUERY_OR);
	if (st != STATUS_OK) {
		xquery_free(p);
		xquery_free(m);
		p = m = NULL;
	}
	*pos_out = p;
	*neg_out = m;
	return st;
}

size_t query_count_terms(const char *text, size_t len)
{
	char *s = xstrndup(text, len);
	size_t n = 0;
	free(split(s, &n));
	free(s);
	return n;
}

enum status query_build_opts(struct analyzer *const *an, size_t n,
			     const char *text, size_t len,
			     const struct query_options *opt,
			     struct xquery **out, char **errmsg)
{
	unsigned flags = opt ? opt->flags : 0;
	size_t max_terms = opt && opt->max_terms ? opt->max_terms
						 : QUERY_MAX_TERMS;
	if (n == 0 || flags != 0) {
		if (errmsg)
			*errmsg = xstrdup(n == 0 ? "query_build: no analyzer"
					  : "query_build: unknown flag");
		return STATUS_INVALID;
	}
	char *s = xstrndup(text, len);
	size_t n_items = 0;
	struct item *items = split(s, &n_items);
	if (n_items > max_terms) {
		if (errmsg)
			*errmsg = xasprintf("too many terms (%zu > %zu)",
					    n_items, max_terms);
		free(items);
		free(s);
		return STATUS_INVALID;
	}
	struct qlist pos = { 0 }, neg = { 0 };
	struct build b = { 0 };
	enum status st = STATUS_OK;
	b.one_tree = true;
	for (size_t i = 1; i < n; i++)
		if (strcmp(analyzer_language(an[i]), analyzer_language(an[0])))
			b.one_tree = false;
	for (size_t i = 0; i < n && st == STATUS_OK; i++) {
		/* Two codes of one analyzer (de, de-ch) analyze alike. */
		bool dup = false;
		for (size_t k = 0; k < i && !dup; k++)
			dup = strcmp(analyzer_language(an[k]),
				     analyzer_language(an[i])) == 0;
		if (dup)
			continue;
		struct xquery *p, *m;
		st = parse(an[i], items, n_items, &b, &p, &m);
		if (st != STATUS_OK) {
			if (errmsg)
				*errmsg = xstrdup(analyzer_errmsg(an[i]));
			break;
		}
		qlist_add(&pos, p);
		qlist_add(&neg, m);
	}
	free(items);
	free(s);
	struct xquery *match = qlist_join(&pos, XQUERY_OR);
	struct xquery *excl = qlist_join(&neg, XQUERY_OR);
	struct xquery *weight = qlist_join(&b.weight, XQUERY_OR);
	strset_release(&b.seen);
	if (st != STATUS_OK || !match) {
		xquery_free(match);
		xquery_free(excl);
		xquery_free(weight);
		if (st == STATUS_OK)
			*out = NULL;
		return st;
	}
	/* With several languages, which documents match is decided without
	 * weights; what they weigh comes from the deduplicated weighted
	 * terms alone, so that a word every language analyzes alike counts
	 * once.  With one, the match side carries them (weight is empty). */
	if (!b.one_tree)
		match = scale(match, 0);
	combine(&match, XQUERY_AND_NOT, excl);
	combine(&match, XQUERY_AND_MAYBE, weight);
	*out = match;
	return STATUS_OK;
}

enum status query_build_multi(struct analyzer *const *an, size_t n,
			      const char *text, size_t len, unsigned flags,
			      struct xquery **out, char **errmsg)
{
	struct query_options opt = { .flags = flags, .max_terms = 0 };
	return query_build_opts(an, n, text, len, &opt, out, errmsg);
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
			   const json_t *fields)
{
	json_t *rds = json_object_get(fields, "redirects");
	const char *title = json_string_value(json_object_get(fields, "title"));
	char *best = NULL;
	struct analyzer_terms q_stem = { 0 }, q_plain = { 0 };
	if (!json_array_size(rds) ||
	    analyzer_query_terms(an, text, strnlen(text, len), &q_stem,
				 &q_plain) != STATUS_OK)
		return NULL;
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
	return best;
}
