/* SPDX-License-Identifier: MIT */
/*
 * xapian-shim.h: a small C API over the parts of Xapian freshet uses.
 *
 * This is the only door to Xapian: xapian-shim.cc is the project's only C++
 * file and the only one that includes <xapian.h>.  Nothing here names a
 * Xapian type.  Every entry point catches every exception and turns it into
 * an enum status (status.h):
 *
 *   Xapian::DatabaseLockError      -> STATUS_LOCKED   (another writer holds it)
 *   Xapian::DatabaseCorruptError   -> STATUS_CORRUPT  (damaged files)
 *   Xapian::DatabaseModifiedError  -> STATUS_MODIFIED (reader: xdb_reopen())
 *   Xapian::DatabaseOpeningError   -> STATUS_NOT_FOUND (no database at path)
 *   Xapian::DatabaseVersionError   -> STATUS_VERSION
 *   Xapian::NetworkError           -> STATUS_TRANSIENT (a remote database
 *                                     unreachable, timed out or closed)
 *   any other Xapian::Error        -> STATUS_XAPIAN
 *   std::bad_alloc                 -> STATUS_NOMEM
 *   anything else                  -> STATUS_UNKNOWN
 *
 * and keeps the message in the handle the call was made on (xdb_errmsg(),
 * xdoc_errmsg(), xmset_errmsg()).  Messages name the exception class and
 * the database path.  The shim never aborts and never prints.
 *
 * Ownership: every pointer a function returns through an out-parameter is
 * owned by the caller and freed with free() unless said otherwise.  Every
 * `const char *` parameter is borrowed for the call.  Out-parameters are set
 * on success only.
 *
 * Threads: a handle (xdb, xdoc, xquery, xmset) is used by one thread at a
 * time.  Different handles may be used from different threads at once, also
 * on the same database path (one writer, many readers: Xapian's rule).
 *
 * Numbers in values: xdoc_set_value_number() stores Xapian's
 * sortable_serialise() form, so numeric values sort and range-match; delve
 * shows them as bytes.  Terms are at most XDB_MAX_TERM bytes including the
 * prefix (glass's limit); longer ones are refused with STATUS_INVALID.
 */
#ifndef FRESHET_XAPIAN_SHIM_H
#define FRESHET_XAPIAN_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define XSHIM_API __attribute__((visibility("default")))
#else
#define XSHIM_API
#endif

/* Glass refuses terms longer than 245 bytes. */
#define XDB_MAX_TERM 245

struct xdb;    /* a database: one writable, or one or more read-only */
struct xdoc;   /* a document being built, or one fetched from a database */
struct xquery; /* an immutable query tree */
struct xmset;  /* the results of one search */

/* ------------------------------------------------------------------ xdb */

/* Flags of xdb_open_write(). */
#define XDB_CREATE    0x1u /* create the database if it does not exist */
#define XDB_WAIT_LOCK 0x2u /* wait for another writer instead of STATUS_LOCKED */

/* Returns a new closed handle, or NULL when out of memory.  The handle
 * exists before any database is opened so that a failed open has a place
 * for its message.  Free with xdb_free(). */
XSHIM_API struct xdb *xdb_new(void);
/* Closes (as xdb_close()) and frees db.  NULL is a no-op.  Cannot fail. */
XSHIM_API void xdb_free(struct xdb *db);
/* Returns the message of the last failed call on db ("" if none).  Owned
 * by db, valid until the next call on db. */
XSHIM_API const char *xdb_errmsg(const struct xdb *db);

/* Opens the glass database at path for writing (the only writer: a second
 * one gets STATUS_LOCKED unless XDB_WAIT_LOCK).  Returns STATUS_OK,
 * STATUS_LOCKED, STATUS_NOT_FOUND (missing and no XDB_CREATE),
 * STATUS_CORRUPT, STATUS_VERSION, STATUS_XAPIAN, STATUS_NOMEM.  db must be
 * closed; STATUS_INVALID otherwise. */
XSHIM_API enum status xdb_open_write(struct xdb *db, const char *path,
				     unsigned flags);
/* Opens path read-only.  Returns as xdb_open_write() (never LOCKED). */
XSHIM_API enum status xdb_open_read(struct xdb *db, const char *path);
/* Adds the read-only database at path to an open read-only db, so that
 * searches see all of them as one (a shard set).  Documents interleave:
 * global docid = (shard docid - 1) * n + shard index + 1, shard index in the
 * order of opening (xdb_open_read() is index 0).  Metadata read through a
 * combined db comes from the first database only. */
XSHIM_API enum status xdb_add_read(struct xdb *db, const char *path);
/* Opens the database an xapian-tcpsrv serves at host:port, read-only,
 * through Xapian's remote backend.  connect_timeout_ms bounds the connect,
 * timeout_ms every later exchange (a search, a document, metadata): past
 * them the call fails with STATUS_TRANSIENT instead of waiting.  Returns as
 * xdb_open_read(), plus STATUS_TRANSIENT. */
XSHIM_API enum status xdb_open_remote(struct xdb *db, const char *host, unsigned port,
				      unsigned timeout_ms, unsigned connect_timeout_ms);
/* Adds a remote database (as xdb_open_remote()) to an open reader, as
 * xdb_add_read() adds a local one. */
XSHIM_API enum status xdb_add_remote(struct xdb *db, const char *host, unsigned port,
				     unsigned timeout_ms, unsigned connect_timeout_ms);
/* Brings a reader to the newest committed revision (after STATUS_MODIFIED
 * or to see new commits).  On a writer this is a no-op. */
XSHIM_API enum status xdb_reopen(struct xdb *db);
/* Closes the database.  A writer's open transaction (xdb_begin()) is
 * cancelled, so uncommitted writes inside it are discarded; writes made
 * outside a transaction are committed (Xapian's rule).  The handle may be
 * opened again.  Closing a closed handle returns STATUS_OK. */
XSHIM_API enum status xdb_close(struct xdb *db);

/* Sets *count to the number of documents (all databases of a set). */
XSHIM_API enum status xdb_doc_count(struct xdb *db, uint64_t *count);
/* Sets *count to the number of documents with a value in slot (all
 * databases of a set).  On a writer this counts writes not yet committed. */
XSHIM_API enum status xdb_value_freq(struct xdb *db, unsigned slot,
				     uint64_t *count);
/* Sets *rev to the committed revision of a single database (a commit that
 * changed nothing does not raise it). */
XSHIM_API enum status xdb_revision(struct xdb *db, uint64_t *rev);

/* Sets *value (NUL-terminated, caller frees) to the metadata stored under
 * key; a missing key gives STATUS_NOT_FOUND (Xapian cannot tell missing from
 * empty).  On a writer this sees writes not yet committed. */
XSHIM_API enum status xdb_get_metadata(struct xdb *db, const char *key,
				       char **value);
/* Calls fn for each metadata key starting with prefix (NULL or "": every
 * key), in sorted order; key is NUL-terminated and borrowed for the call.
 * fn returns 0 to go on, non-zero to stop (then this returns STATUS_OK).
 * A combined db lists the keys of its first database only. */
typedef int (*xdb_key_fn)(void *ctx, const char *key);
XSHIM_API enum status xdb_metadata_keys(struct xdb *db, const char *prefix,
					xdb_key_fn fn, void *ctx);
/* Stores value under key (empty value deletes the key); writer only. */
XSHIM_API enum status xdb_set_metadata(struct xdb *db, const char *key,
				       const char *value);

/* Starts a transaction on a writer: until xdb_commit() nothing is written
 * to disk (Xapian's automatic flush is off inside it) and xdb_cancel()
 * discards everything since xdb_begin().  STATUS_INVALID if one is open. */
XSHIM_API enum status xdb_begin(struct xdb *db);
/* Makes every write durable: commits the open transaction (if any) and the
 * database.  On failure the pending writes are lost. */
XSHIM_API enum status xdb_commit(struct xdb *db);
/* Discards the open transaction's writes.  STATUS_INVALID if none is open. */
XSHIM_API enum status xdb_cancel(struct xdb *db);

/* Replaces the document indexed by unique_term (a term the document also
 * holds, e.g. "Q42") with doc, or adds it when there is none.  doc is
 * borrowed. */
XSHIM_API enum status xdb_replace(struct xdb *db, const char *unique_term,
				  const struct xdoc *doc);
/* Deletes every document indexed by unique_term.  STATUS_NOT_FOUND when
 * there was none (nothing changed). */
XSHIM_API enum status xdb_delete(struct xdb *db, const char *unique_term);
/* Deletes up to max documents that have a value in slot, in docid order,
 * and sets *deleted to how many.  Writer only; inside a transaction the
 * deletions wait for xdb_commit() like any write. */
XSHIM_API enum status xdb_purge_value(struct xdb *db, unsigned slot,
				      size_t max, size_t *deleted);
/* Writes a compacted copy of the committed revision of the single database
 * db (writer or reader) to the new directory dest, keeping docids.  What
 * deletions freed in db's files (old blocks, the previous revision) is not
 * copied.  dest must not exist; a failed call may leave a partial dest for
 * the caller to remove.  Pending writes of a writer are not in the copy. */
XSHIM_API enum status xdb_compact(struct xdb *db, const char *dest);
/* Sets *doc to the document indexed by unique_term, to be freed with
 * xdoc_free().  Its values and data are read at once (they stay valid
 * whatever happens to db); its terms are read lazily, so xdoc_terms() on it
 * needs db still open.  STATUS_NOT_FOUND if none.  On a writer this sees
 * writes not yet committed. */
XSHIM_API enum status xdb_get(struct xdb *db, const char *unique_term,
			      struct xdoc **doc);

/* ------------------------------------------------------------------ xdoc */

/* Returns a new empty document, or NULL when out of memory. */
XSHIM_API struct xdoc *xdoc_new(void);
/* NULL is a no-op. */
XSHIM_API void xdoc_free(struct xdoc *doc);
/* As xdb_errmsg(), for doc. */
XSHIM_API const char *xdoc_errmsg(const struct xdoc *doc);

/* Adds prefix+term (term is len bytes, not NUL-terminated; prefix may be
 * NULL or "") at position pos, raising its wdf by wdfinc.  STATUS_INVALID
 * for an empty or too long (> XDB_MAX_TERM) term. */
XSHIM_API enum status xdoc_add_posting(struct xdoc *doc, const char *prefix,
				       const char *term, size_t len,
				       uint32_t pos, uint32_t wdfinc);
/* Adds prefix+term without a position, raising its wdf by wdfinc; wdfinc 0
 * makes a boolean (filter) term.  Same failures as xdoc_add_posting(). */
XSHIM_API enum status xdoc_add_term(struct xdoc *doc, const char *prefix,
				    const char *term, size_t len,
				    uint32_t wdfinc);
/* Stores len bytes in value slot. */
XSHIM_API enum status xdoc_set_value(struct xdoc *doc, unsigned slot,
				     const char *value, size_t len);
/* Stores v in slot as sortable_serialise(v). */
XSHIM_API enum status xdoc_set_value_number(struct xdoc *doc, unsigned slot,
					    double v);
/* Sets the document data (len bytes). */
XSHIM_API enum status xdoc_set_data(struct xdoc *doc, const char *data,
				    size_t len);
/* Sets *value and *len to a copy of value slot (NUL-terminated for
 * convenience, caller frees); an empty or missing slot gives "" and 0. */
XSHIM_API enum status xdoc_get_value(const struct xdoc *doc, unsigned slot,
				     char **value, size_t *len);
/* Sets *v to sortable_unserialise() of slot (0 for an empty slot). */
XSHIM_API enum status xdoc_get_value_number(const struct xdoc *doc,
					    unsigned slot, double *v);
/* Sets *data and *len to a copy of the data (NUL-terminated, caller frees). */
XSHIM_API enum status xdoc_get_data(const struct xdoc *doc, char **data,
				    size_t *len);
/* Sets *n to the number of distinct terms. */
XSHIM_API enum status xdoc_term_count(const struct xdoc *doc, size_t *n);
/* Calls fn for each term in sorted order with its wdf and positions
 * (positions borrowed for the call, npos may be 0).  fn returns 0 to go
 * on, non-zero to stop (then this returns STATUS_OK).  For dumps (reindex
 * --dry-run) and tests. */
typedef int (*xdoc_term_fn)(void *ctx, const char *term, size_t len,
			    uint32_t wdf, const uint32_t *positions,
			    size_t npos);
XSHIM_API enum status xdoc_terms(const struct xdoc *doc, xdoc_term_fn fn,
				 void *ctx);
/* Sets *hash to a 64-bit fingerprint of everything that reaches the index:
 * terms in sorted order with their wdf and positions, every value except
 * slot skip_slot (pass a slot the document does not use to hash all), and
 * the data.  Equal documents give equal hashes, whatever order they were
 * built in. */
XSHIM_API enum status xdoc_hash(const struct xdoc *doc, unsigned skip_slot,
				uint64_t *hash);

/* ---------------------------------------------------------------- xquery */

/* Queries are immutable trees; building one copies nothing big (Xapian
 * shares subqueries).  Builders return NULL only when out of memory (or
 * for invalid arguments, noted); every query is freed with xquery_free(),
 * and combining does not take ownership of the parts. */

enum xquery_op {
	XQUERY_AND,       /* both */
	XQUERY_OR,        /* either, weights add */
	XQUERY_AND_NOT,   /* left, unless right matches */
	XQUERY_FILTER,    /* left, restricted to right; right adds no weight */
	XQUERY_AND_MAYBE, /* left; right adds weight where it matches */
};

/* A term (len bytes) with within-query frequency wqf (1 for most uses). */
XSHIM_API struct xquery *xquery_term(const char *term, size_t len,
				     uint32_t wqf);
/* Terms in order at consecutive positions (window 0 = exactly adjacent,
 * else within window positions).  NULL for n == 0. */
XSHIM_API struct xquery *xquery_phrase(const char *const *terms, size_t n,
				       unsigned window);
/* Terms near each other in any order, within window positions. */
XSHIM_API struct xquery *xquery_near(const char *const *terms, size_t n,
				     unsigned window);
/* a OP b.  Either may be NULL, meaning "no query": then the other is
 * returned (a copy), as Xapian does with an empty query. */
XSHIM_API struct xquery *xquery_combine(enum xquery_op op,
					const struct xquery *a,
					const struct xquery *b);
/* The OR (op XQUERY_OR) or AND (XQUERY_AND) of n parts at once; NULL
 * parts are skipped.  Takes time linear in n, where joining the parts two
 * at a time with xquery_combine() takes time quadratic in n.  Returns NULL
 * when every part is NULL, for another op, or when out of memory. */
XSHIM_API struct xquery *xquery_combine_n(enum xquery_op op,
					  const struct xquery *const *parts,
					  size_t n);
/* Every term starting with prefix (a non-empty string), ORed: the terms
 * are looked up when the query runs.  NULL for an empty prefix. */
XSHIM_API struct xquery *xquery_prefix(const char *prefix);
/* q with its weight multiplied by factor (>= 0; 0 turns it boolean). */
XSHIM_API struct xquery *xquery_scale(const struct xquery *q, double factor);
/* Every document. */
XSHIM_API struct xquery *xquery_match_all(void);
/* Every document whose value in slot is >= limit (len bytes), compared
 * bytewise; boolean (adds no weight).  An empty limit matches every
 * document, with a value or not (Xapian's rule). */
XSHIM_API struct xquery *xquery_value_ge(unsigned slot, const char *limit,
					 size_t len);
/* NULL is a no-op. */
XSHIM_API void xquery_free(struct xquery *q);
/* Returns Xapian's description of q (caller frees), NULL if out of memory. */
XSHIM_API char *xquery_describe(const struct xquery *q);

/* ----------------------------------------------------------------- xmset */

/* Runs q against db (single or combined) and sets *mset to results
 * offset .. offset+count-1 by relevance, with each hit's data already read
 * (so reading the results cannot fail with STATUS_MODIFIED later).  When
 * another process committed twice since db was opened this returns
 * STATUS_MODIFIED: call xdb_reopen() and search again. */
XSHIM_API enum status xdb_search(struct xdb *db, const struct xquery *q,
				 unsigned offset, unsigned count,
				 struct xmset **mset);

/* Options of xdb_search_opts(); zero fields mean Xapian's defaults. */
struct xsearch_opts {
	/* Count at least this many matches exactly (when there are that
	 * many), so that xmset_bounds() is exact for smaller result sets. */
	unsigned check_at_least;
	/* Stop matching after this many milliseconds (0: no limit); the
	 * results are then the best found so far and the bounds inexact. */
	unsigned time_limit_ms;
	/* Leave the hits' data unread ("" in xmset_hit()) until
	 * xmset_load_data() asks for one: for callers that rank many hits
	 * by something cheaper (xmset_doclength()) and show a few. */
	bool no_data;
};

/* xdb_search() with options o (NULL: none). */
XSHIM_API enum status xdb_search_opts(struct xdb *db, const struct xquery *q,
				      unsigned offset, unsigned count,
				      const struct xsearch_opts *o,
				      struct xmset **mset);

/* Calls fn for each distinct term starting with prefix (all databases of
 * a set merged), in byte order, with the number of documents holding it,
 * until fn returns non-zero or max terms were given (max 0: no bound).
 * The term is borrowed for the call.  Dead (marked) documents count too:
 * the caller filters them through a search. */
typedef int (*xdb_term_fn)(void *ctx, const char *term, size_t len,
			   uint64_t docs);
XSHIM_API enum status xdb_terms(struct xdb *db, const char *prefix,
				size_t max, xdb_term_fn fn, void *ctx);
/* As xdb_terms(), starting after the term `after` (NULL or "": from the
 * first term of prefix), so that a walk over a prefix can resume where it
 * stopped. */
XSHIM_API enum status xdb_terms_after(struct xdb *db, const char *prefix,
				      const char *after, size_t max,
				      xdb_term_fn fn, void *ctx);

/* Calls fn for each document holding a term that starts with prefix (all
 * databases of a set merged: docid is the global one), term by term in
 * byte order and within a term by rising docid, with the term (borrowed
 * for the call), the docid and the document's length (terms, with
 * repeats), until fn returns non-zero or the postings of max terms were
 * given (max 0: no bound).  Reads the posting and document-length lists
 * only, no document: for ranking many candidates by something cheap and
 * reading a few (xdb_doc_value()).  Dead (marked) documents are given
 * too. */
typedef int (*xdb_posting_fn)(void *ctx, const char *term, size_t len,
			      uint32_t docid, uint64_t doclen);
XSHIM_API enum status xdb_postings(struct xdb *db, const char *prefix,
				   size_t max, xdb_posting_fn fn, void *ctx);
/* Sets *value (caller frees, NUL-terminated; "" with *len 0 when the
 * document has none) to document docid's value in slot.  STATUS_NOT_FOUND
 * when there is no document docid. */
XSHIM_API enum status xdb_doc_value(struct xdb *db, uint32_t docid,
				    unsigned slot, char **value, size_t *len);
/* Sets *data (caller frees, NUL-terminated) and *len to document docid's
 * data.  STATUS_NOT_FOUND when there is no document docid. */
XSHIM_API enum status xdb_doc_data(struct xdb *db, uint32_t docid, char **data,
				   size_t *len);

struct xmset_hit {
	uint32_t docid;   /* global docid (see xdb_add_read for sets) */
	unsigned rank;    /* 0-based rank in the whole result list */
	double weight;    /* BM25 weight */
	const char *data; /* the document data, NUL-terminated; owned by the
			   * mset, valid until xmset_free() */
	size_t data_len;
};

/* NULL is a no-op. */
XSHIM_API void xmset_free(struct xmset *mset);
XSHIM_API const char *xmset_errmsg(const struct xmset *mset);
/* The number of hits held (<= count). */
XSHIM_API size_t xmset_size(const struct xmset *mset);
/* Xapian's estimate of the total number of matches. */
XSHIM_API uint64_t xmset_estimate(const struct xmset *mset);
/* Sets *lower and *upper to Xapian's bounds on the number of matches:
 * equal when the count is exact. */
XSHIM_API void xmset_bounds(const struct xmset *mset, uint64_t *lower,
			    uint64_t *upper);
/* Fills *hit with hit i (0 <= i < xmset_size()); STATUS_INVALID otherwise. */
XSHIM_API enum status xmset_hit(const struct xmset *mset, size_t i,
				struct xmset_hit *hit);
/* Sets *len to the length (terms, with repeats) of hit i's document: a
 * read of Xapian's document-length list, not of the document. */
XSHIM_API enum status xmset_doclength(struct xmset *mset, size_t i, uint64_t *len);
/* Reads hit i's data when the search left it unread (no_data); a no-op
 * otherwise.  STATUS_INVALID for an index out of range. */
XSHIM_API enum status xmset_load_data(struct xmset *mset, size_t i);
/* Sets *out (caller frees) to a snippet of about max_len bytes of text
 * (text_len bytes, UTF-8) around the query's matching words, each match
 * wrapped in hi_start/hi_end (e.g. "<b>", "</b>"); omitted text is marked
 * with "...".  stem_lang is a Snowball language name ("english") used to
 * match Z-prefixed stems, or NULL/"" for exact words only.  Unknown
 * stem_lang: STATUS_INVALID.  The text is not escaped: escape the result
 * for HTML if it came from untrusted text (or pass escaped text).  Of a
 * text longer than 4 KiB only a 4 KiB window is analysed, starting 1 KiB
 * before the first place a word of the query appears as it is (ASCII
 * letters in any case) or as the beginning of one of its stems, else at
 * the start; a match found only by its stem beyond the window is not
 * shown. */
XSHIM_API enum status xmset_snippet(struct xmset *mset, const char *text,
				    size_t text_len, size_t max_len,
				    const char *stem_lang,
				    const char *hi_start, const char *hi_end,
				    char **out);

#ifdef __cplusplus
}
#endif

#endif
