/* SPDX-License-Identifier: MIT */
/*
 * shard.h: a wiki's Xapian shards on disk, the documents in them, and the
 * rules a write must pass (schema and analyzer versions, fencing token, rev
 * guard, no-op check).  Plain C over the Xapian shim (xapian-shim.h).
 *
 * doc/shards.md describes the layout on disk, the document schema (term
 * prefixes, value slots, the data JSON) and the metadata keys; the
 * SHARD_VALUE_* and SHARD_PREFIX_* constants below name them.  In short:
 * shard N of a generation is <data_dir>/<wiki>/<generation>/shard-<N>,
 * `current` is a symlink to the live generation, and a page lives in shard
 * shard_route(page_id, shards).  shard_set_swap() changes `current` by one
 * rename(2), so a reader sees the old or the new generation, complete.
 *
 * What a writer's calls return, by rule:
 *
 *   - schema: shard_open() refuses a shard whose stored schema version
 *     differs from SHARD_SCHEMA_VERSION (STATUS_VERSION; the message says
 *     to rebuild).  A new empty shard gets the running version.
 *   - analyzers: shard_check_analyzer() refuses (STATUS_VERSION) a language
 *     stored with another analyzer name or version; an unrecorded language
 *     is recorded.
 *   - fencing: shard_commit(sh, token) with a token lower than the stored
 *     one is refused (STATUS_FENCED) and the pending writes are discarded;
 *     otherwise the token is stored with the commit.  The token comes from
 *     the partition's lease (lease.h).
 *   - rev guard: shard_replace() of a page whose stored rev_id is greater
 *     than the document's is skipped (STATUS_SKIPPED); an equal rev_id
 *     applies (rerenders land).
 *   - no-op: a document whose fingerprint equals the stored one is not
 *     rewritten (STATUS_NOOP); a commit with nothing written makes no new
 *     database revision.
 *
 * Deletes are marks: shard_delete() sets the dead-mark value on the stored
 * document instead of deleting it, because rewriting a document's values
 * touches a few blocks while deleting it rewrites every posting and
 * position list it is in.  Every reader here treats a dead document as
 * absent: shard_replace, shard_get_rev, shard_delete, shard_doc_count,
 * shard_set_search and shard_set_stats.  shard_purge() deletes dead
 * documents for real; the worker calls it when its partition is idle,
 * freshetctl compact before compacting.  Until then Xapian's own tools
 * (delve, quest, xapian-check's counts) still see them.
 *
 * Group commit: writes collect in an open transaction until the caller
 * calls shard_commit(); shard_pending() says how many and since when.
 * Nothing reaches the disk before shard_commit(): closing or a crash
 * discards uncommitted writes; a commit is durable (Xapian fsyncs).
 *
 * Errors: every fallible call returns enum status; the message is in the
 * handle (shard_errmsg(), shard_set_errmsg()).  Memory is allocated with
 * xmalloc (aborts on out of memory).
 *
 * Threads: each handle is used by one thread at a time.  One writer per
 * shard (Xapian locks it: a second shard_open() gets STATUS_LOCKED); any
 * number of readers (struct shard_set) in any process.
 */
#ifndef FRESHET_SHARD_H
#define FRESHET_SHARD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "xapian-shim.h"

/* 3: the data is the small fields' JSON, a newline, then the raw text,
 * and value 5 holds the fields (doc/shards.md).  4: the completion
 * prefix terms (XP, XRP). */
#define SHARD_SCHEMA_VERSION 4

/* Value slots (doc/shards.md). */
#define SHARD_VALUE_REV         0
#define SHARD_VALUE_TIMESTAMP   1
#define SHARD_VALUE_NAMESPACE   2
#define SHARD_VALUE_FINGERPRINT 3
#define SHARD_VALUE_DEAD        4
/* The document's small fields: the first line of its data, so that
 * listing a page needs no read of its text (schema 3 on). */
#define SHARD_VALUE_FIELDS 5

/* Term prefixes, after Omega's conventions (doc/shards.md). */
#define SHARD_PREFIX_ID         "Q"
#define SHARD_PREFIX_BODY       ""
#define SHARD_PREFIX_STEM       "Z"
#define SHARD_PREFIX_TITLE      "S"
#define SHARD_PREFIX_TITLE_STEM "ZS"
#define SHARD_PREFIX_HEADING    "XH"
#define SHARD_PREFIX_HEADING_STEM "ZXH"
#define SHARD_PREFIX_AUX        "XA"
#define SHARD_PREFIX_AUX_STEM   "ZXA"
#define SHARD_PREFIX_NAMESPACE  "XNS"
#define SHARD_PREFIX_LANGUAGE   "L"
#define SHARD_PREFIX_CATEGORY   "XC"
/* The whole title folded (document_fold_title()), one boolean term per
 * page, for title completion. */
#define SHARD_PREFIX_TITLE_FOLDED "XT"
/* The titles of the redirects that point at the page, analyzed like the
 * title (plain with positions, stemmed without), one completion term per
 * redirect title (XRT + the folded title) and one boolean term per
 * redirect page (XRI + its page id) that tells which document holds a
 * redirect. */
#define SHARD_PREFIX_REDIRECT      "XR"
#define SHARD_PREFIX_REDIRECT_STEM "ZXR"
#define SHARD_PREFIX_REDIRECT_COMPLETION "XRT"
#define SHARD_PREFIX_REDIRECT_ID   "XRI"
/* Completion prefix terms (boolean): for each of the first
 * SHARD_COMPLETION_CHARS characters of a folded title (XT) or redirect
 * title (XRT), the prefix + those characters + SHARD_COMPLETION_SEP + the
 * page's weight as 8 hex digits of 0xffffffff minus its length.  The
 * terms of one typed prefix so come in byte order heaviest page first,
 * and a completion reads the first few instead of ranking every title
 * that starts with it.  The separator is a character no title holds. */
#define SHARD_PREFIX_TITLE_PREFIX    "XP"
#define SHARD_PREFIX_REDIRECT_PREFIX "XRP"
#define SHARD_COMPLETION_SEP  "|"
#define SHARD_COMPLETION_CHARS 16

/* The stored text (for snippets) is cut to this many bytes. */
#define SHARD_TEXT_MAX (64 * 1024)

/* Returns the shard that owns page_id: page_id mod shards (shards > 0). */
unsigned shard_route(uint64_t page_id, unsigned shards);

/* ------------------------------------------------------------- documents */

struct shard_doc;

/* Returns a new empty document for page_id (with its Q term).  Never NULL.
 * Free with shard_doc_free(). */
struct shard_doc *shard_doc_new(uint64_t page_id);
/* NULL is a no-op. */
void shard_doc_free(struct shard_doc *d);
uint64_t shard_doc_page_id(const struct shard_doc *d);

/* Adds prefix+term (len bytes of UTF-8, as the analyzer gave it) at
 * position pos, wdf +1.  Use for plain (unstemmed) views: SHARD_PREFIX_BODY,
 * _TITLE, _HEADING, _AUX.  Positions of one prefix should rise through the
 * document (leave gaps between fields/sentences as the analyzer does).
 * Empty terms and terms longer than XDB_MAX_TERM (prefix included) are
 * skipped and counted (shard_doc_skipped()), as Xapian's TermGenerator
 * does. */
void shard_doc_add_posting(struct shard_doc *d, const char *prefix,
			   const char *term, size_t len, uint32_t pos);
/* Adds prefix+term without a position, wdf +1.  Use for stemmed views
 * (SHARD_PREFIX_STEM, _TITLE_STEM, ...).  Skips as shard_doc_add_posting(). */
void shard_doc_add_term(struct shard_doc *d, const char *prefix,
			const char *term, size_t len);
/* Adds a boolean (filter) term prefix+term, NUL-terminated, wdf 0. */
void shard_doc_add_boolean(struct shard_doc *d, const char *prefix,
			   const char *term);
/* The number of terms skipped as empty or too long. */
size_t shard_doc_skipped(const struct shard_doc *d);
/* The document's length so far: the wdf of its terms summed, as Xapian
 * counts it (boolean terms count 0). */
uint64_t shard_doc_length(const struct shard_doc *d);

/* Metadata.  Strings are copied; setting again replaces. */
/* Title as MediaWiki shows it; underscores (db keys) become spaces. */
void shard_doc_set_title(struct shard_doc *d, const char *title);
/* Display title (may hold HTML as MediaWiki returns it); defaults to the
 * title. */
void shard_doc_set_display_title(struct shard_doc *d, const char *display);
/* Namespace id; adds the boolean term XNS<ns>. Default 0. */
void shard_doc_set_namespace(struct shard_doc *d, int ns);
/* Language code (e.g. "en", "zh-hans"); adds the boolean term L<code>. */
void shard_doc_set_language(struct shard_doc *d, const char *code);
void shard_doc_set_url(struct shard_doc *d, const char *url);
/* Revision id and its timestamp (unix seconds). */
void shard_doc_set_rev(struct shard_doc *d, uint64_t rev_id, int64_t timestamp);
/* Adds a category (as MediaWiki names it, without "Category:"): kept in the
 * data and indexed as the boolean term shard_category_term(name). */
void shard_doc_add_category(struct shard_doc *d, const char *name);
/* Adds a redirect that points at the page: its title (as MediaWiki shows
 * it, with namespace prefix) goes into the data's "redirects" list, and
 * the boolean term XRI<redirect_page_id> is added.  The caller indexes the
 * title's words itself (SHARD_PREFIX_REDIRECT, document.c). */
void shard_doc_add_redirect(struct shard_doc *d, uint64_t redirect_page_id,
			    const char *title);
/* The text snippets are made from (len bytes of UTF-8), cut to
 * SHARD_TEXT_MAX bytes at a character boundary. */
void shard_doc_set_text(struct shard_doc *d, const char *text, size_t len);

/* Returns the boolean term of category name: "XC" + name lowercased
 * (Unicode, root locale) with underscores as spaces.  Caller frees.  The
 * search side uses it to build category filters. */
char *shard_category_term(const char *name);

/* Returns the document as the shard would store it (caller frees): the data
 * fields' JSON ("data: "), the text as a JSON string ("text: "), the
 * values, then one line per term "term wdf=N pos=1,2,3".  For reindex-page
 * --dry-run and debugging. */
char *shard_doc_dump(struct shard_doc *d);

/* A document's stored data, decoded (doc/shards.md). */
struct shard_data {
	json_t *fields;   /* the small fields ("page_id", "title", ...,
				"redirects"), owned */
	const char *text; /* the stored text, text_len bytes; borrowed from
				the data decoded (or, schema 2, from fields),
				NUL-terminated when that data is */
	size_t text_len;
	uint64_t size;       /* bytes of the text */
	uint64_t word_count; /* its words (runs of non-space) */
};

/* Decodes a document's data (len bytes, as the shard stores it) into *out
 * (release with shard_data_release()): the layout of schema 3 (the
 * fields' compact JSON, "\n", the raw text) costs the parse of the small
 * fields only; the one JSON object of schema 2 (the text in its "text",
 * size and word count counted here) still reads, so a reader follows
 * shards written before the change until they are rebuilt.  Returns
 * STATUS_OK, or STATUS_CORRUPT when the fields are no JSON object (*out
 * untouched).  Thread-safe. */
enum status shard_data_decode(const char *data, size_t len,
			      struct shard_data *out);
/* Frees the fields and zeroes d. */
void shard_data_release(struct shard_data *d);

/* ---------------------------------------------------------------- writer */

struct shard;

/* Makes the process's umask keep group write and all world bits off
 * (umask |= 027), so that everything written under data_dir is 0750
 * (directories) or 0640 (files) at most, whatever umask the shell had.
 * Xapian creates the files itself, at shard_open() and again at every
 * commit (a new version file renamed into place), so a chmod after
 * creation would miss the later ones: the umask is set for the whole
 * process instead.  It is process-wide, so every program that writes
 * shards calls this once at the start of main(), before threads start;
 * the directories are also created with mode 0750 explicitly. */
void shard_private_umask(void);

/* Flags of shard_open(). */
#define SHARD_CREATE    0x1u /* create the database if missing */
#define SHARD_WAIT_LOCK 0x2u /* wait for another writer instead of LOCKED */

/* Returns a new closed writer handle.  Never NULL. */
struct shard *shard_new(void);
/* Closes (discarding uncommitted writes) and frees.  NULL is a no-op. */
void shard_free(struct shard *sh);
/* Message of the last failed call, "" if none; owned by sh, valid until
 * the next call on sh. */
const char *shard_errmsg(const struct shard *sh);

/* Opens the shard at path (e.g. from shard_set_path()) as its one writer
 * and checks its schema version (see the top of this file).  Returns
 * STATUS_OK, STATUS_LOCKED (another writer), STATUS_NOT_FOUND (no shard and
 * no SHARD_CREATE), STATUS_CORRUPT, STATUS_VERSION, STATUS_XAPIAN,
 * STATUS_IO. */
enum status shard_open(struct shard *sh, const char *path, unsigned flags);
/* Closes; uncommitted writes are discarded.  Returns STATUS_OK or a close
 * error (the handle is closed either way). */
enum status shard_close(struct shard *sh);

/* Checks that language lang was indexed with analyzer name at version (or
 * never indexed): STATUS_VERSION with a message naming both when the
 * stored pair differs, else STATUS_OK (recording the pair, committed with
 * the next commit).  Call once per analyzer after shard_open(). */
enum status shard_check_analyzer(struct shard *sh, const char *lang,
				 const char *name, const char *version);

/* Writes d (borrowed; it may be written again or elsewhere) in place of the
 * page's stored document.  Returns STATUS_OK (written, pending commit),
 * STATUS_SKIPPED (the stored rev_id is newer: nothing written), STATUS_NOOP
 * (identical document stored: nothing written), or an error.  The rev guard
 * and no-op check see pending (uncommitted) writes too. */
enum status shard_replace(struct shard *sh, struct shard_doc *d);
/* Deletes page_id's document (marks it dead, see the top of this file).
 * STATUS_OK (pending commit) or STATUS_NOOP when there was none (or it is
 * dead already). */
enum status shard_delete(struct shard *sh, uint64_t page_id);
/* Deletes page_id's document for real, live or dead, without the mark:
 * for a page whose text must leave the index (hidden or suppressed), where
 * the cost of a real delete is worth paying now.  STATUS_OK (pending
 * commit) or STATUS_NOOP when there was none.  The text stays in the
 * shard's files (freed blocks, the previous revision) until
 * shard_compact(). */
enum status shard_erase(struct shard *sh, uint64_t page_id);
/* Sets *rev_id to the stored (or pending) rev_id of page_id;
 * STATUS_NOT_FOUND when the page is not in the shard (or dead). */
enum status shard_get_rev(struct shard *sh, uint64_t page_id, uint64_t *rev_id);
/* Sets *count to the number of dead documents waiting for the purge,
 * pending writes included. */
enum status shard_dead_count(struct shard *sh, uint64_t *count);
/* Deletes up to max dead documents for real (pending commit, like any
 * write) and sets *purged to how many.  A purge of n documents costs about
 * what deleting n documents costs, so callers do it when nothing waits. */
enum status shard_purge(struct shard *sh, size_t max, size_t *purged);

/* Rewrites the shard's last commit into a compacted copy (xapian-compact
 * without renumbering) beside it, "<path>.compact", exchanges the two
 * directories in one renameat2(RENAME_EXCHANGE), removes the old files and
 * opens the shard again.  Nothing of what deletions freed survives in the
 * shard's files.  A reader keeps the files it opened until it reopens.
 * Costs about a copy of the shard.  Returns STATUS_OK; STATUS_INVALID when
 * writes or metadata are pending (commit first); STATUS_IO or a shim
 * status when the copy or the exchange fails, with the shard left as it
 * was and still open; or the status of the reopen, with the shard closed
 * (open it again); or STATUS_IO when the old files could not be removed
 * (the shard is open on the copy; the message names them). */
enum status shard_compact(struct shard *sh);

/* Records stream_id as the last applied position of partition (the stream
 * key); committed with the next commit. */
enum status shard_set_position(struct shard *sh, const char *partition,
			       const char *stream_id);
/* Sets *stream_id (caller frees) to the stored position of partition, or
 * returns STATUS_NOT_FOUND. */
enum status shard_get_position(struct shard *sh, const char *partition,
			       char **stream_id);
/* Sets *token to the stored fencing token (0 if none). */
enum status shard_get_fence(struct shard *sh, uint64_t *token);

/* Commits every pending write with fencing token `token` and the commit
 * time.  STATUS_FENCED (pending writes discarded, message names both
 * tokens) when token is lower than the stored token.  With nothing pending
 * (no write, no position, no new analyzer, same token) it returns
 * STATUS_OK without touching the disk.  Any other failure also discards
 * the pending writes: redeliver them. */
enum status shard_commit(struct shard *sh, uint64_t token);
/* Returns the number of writes (replacements and deletions) not yet
 * committed, and sets *since_ms (if not NULL) to the CLOCK_MONOTONIC time in
 * milliseconds of the first of them (0 when none). */
size_t shard_pending(const struct shard *sh, int64_t *since_ms);
/* Sets *count to the number of live documents, pending writes included. */
enum status shard_doc_count(struct shard *sh, uint64_t *count);
/* The underlying database (borrowed, valid until shard_close()): for
 * tests and tools. */
struct xdb *shard_xdb(struct shard *sh);

/* ------------------------------------------------- a wiki's set of shards */

struct shard_set;

/* Returns a handle on <data_dir>/<wiki> (nothing is opened yet).  Never
 * NULL.  Strings are copied. */
struct shard_set *shard_set_new(const char *data_dir, const char *wiki);
/* Closes the reader (if open) and frees.  NULL is a no-op. */
void shard_set_free(struct shard_set *set);
const char *shard_set_errmsg(const struct shard_set *set);

/* Returns the path of shard n of generation (NULL: through `current`), or
 * the generation directory itself when n is SHARD_SET_DIR.  Caller frees. */
#define SHARD_SET_DIR ((unsigned)-1)
char *shard_set_path(const struct shard_set *set, const char *generation,
		     unsigned n);
/* Returns a new generation name, "g" + UTC time + nanoseconds, sorting in
 * creation order (e.g. "g20261129T161134.123456789Z").  Caller frees. */
char *shard_generation_name(void);

/* Sets *generation (caller frees) to the generation `current` points at;
 * STATUS_NOT_FOUND when there is none. */
enum status shard_set_current(struct shard_set *set, char **generation);
/* Sets *shards to the number of shards of generation (NULL: current): the
 * shard-0 .. shard-<n-1> directories.  STATUS_NOT_FOUND if none. */
enum status shard_set_count(struct shard_set *set, const char *generation,
			    unsigned *shards);
/* Creates generation with `shards` empty shards (schema version recorded
 * and committed), creating <data_dir>/<wiki> as needed.  STATUS_INVALID if
 * the generation exists. Writers then fill it with shard_open(). */
enum status shard_set_create(struct shard_set *set, const char *generation,
			     unsigned shards);
/* Points `current` at generation atomically (symlink to a temporary name,
 * then rename over `current`).  Refuses (STATUS_NOT_FOUND) a generation
 * that has no shards.  The old generation stays on disk: remove it with
 * shard_set_remove() once its writers and readers are gone. */
enum status shard_set_swap(struct shard_set *set, const char *generation);
/* Removes a generation directory that `current` does not point at
 * (STATUS_INVALID if it does). */
enum status shard_set_remove(struct shard_set *set, const char *generation);

/* Opens every shard of the current generation read-only as one database
 * (shard order 0..n-1, see xdb_add_read for docids).  A swap between
 * reading `current` and opening the shards is retried. */
enum status shard_set_open(struct shard_set *set);
/* The combined reader (borrowed, valid until the next shard_set_open/
 * _reopen/_free), NULL when not open. */
struct xdb *shard_set_db(struct shard_set *set);
/* The number of shards and the generation of the open reader. */
unsigned shard_set_shards(const struct shard_set *set);
const char *shard_set_generation(const struct shard_set *set);
/* Sees the newest commits: reopens the databases, or opens the new
 * generation when `current` moved.  Use after STATUS_MODIFIED. */
enum status shard_set_reopen(struct shard_set *set);
/* Runs q (borrowed) on the open reader, reopening and retrying once on
 * STATUS_MODIFIED.  *mset as xdb_search(). */
enum status shard_set_search(struct shard_set *set, const struct xquery *q,
			     unsigned offset, unsigned count,
			     struct xmset **mset);
/* As shard_set_search(), with the search options o (xapian-shim.h; NULL
 * for none): a time limit, how many matches to count exactly. */
enum status shard_set_search_opts(struct shard_set *set, const struct xquery *q,
				  unsigned offset, unsigned count,
				  const struct xsearch_opts *o,
				  struct xmset **mset);

/* Makes shard_set_open() and shard_set_reopen() go on without the shards
 * that cannot be opened, for a server that must answer from the others:
 * the generation is taken to have at least `shards` shards (the wiki's
 * configured count, so that a missing shard directory is a failed shard,
 * not a smaller set), each shard that fails to open is left out and
 * counted (shard_set_failed(); shard_set_errmsg() says why), and opening
 * fails only when no shard opens.  While a shard is left out, every
 * shard_set_reopen() tries them all again.  Call before the first open. */
void shard_set_allow_missing(struct shard_set *set, unsigned shards);
/* Makes the reader open shard i from the xapian-tcpsrv at addrs[i]
 * ("host:port", one per shard, in shard order; n of them) through Xapian's
 * remote backend instead of the data directory: the remote servers serve
 * their host's current shards, so there is no generation to follow
 * (shard_set_generation() is "remote").  timeout_ms bounds each connect and
 * each exchange with a remote, so a dead or hung server fails its shard
 * instead of the query.  With shard_set_allow_missing(), a remote that
 * cannot be reached is a failed shard, and a search that fails with
 * STATUS_TRANSIENT (a remote died since the open) opens afresh, leaving it
 * out, and searches again.  addrs is copied.  Call before the first open. */
void shard_set_remote(struct shard_set *set, const char *const *addrs, unsigned n,
		      unsigned timeout_ms);
/*
 * Replicas (doc/shards.md "Replicas"): a host that does not write shard n
 * of a wiki may hold a copy of it that xapian-replicate keeps, in
 * <data_dir>/<wiki>/replica/shard-<n>: a stub file XAPIANDB ("auto
 * replica_1") naming the live one of two slots, replica_0 and replica_1.
 * A full copy lands in the other slot and then switches the stub.
 */

/* Makes the reader open each shard n from the live slot of its replica
 * when the host has one (shard_set_replica_live()), else from the current
 * generation as usual.  Every shard_set_reopen() looks at the stubs again
 * and opens afresh when a shard's source changed (a replica appeared, went
 * or switched slots after a full copy), which a plain reopen would not
 * see.  Call before the first open. */
void shard_set_use_replicas(struct shard_set *set);
/* Returns the directory of shard n's replica, or the directory of every
 * replica of the wiki when n is SHARD_SET_DIR.  Caller frees. */
char *shard_set_replica_dir(const struct shard_set *set, unsigned n);
/* Sets *live (caller frees) to the path of the live slot of shard n's
 * replica.  STATUS_NOT_FOUND when the host has no replica of it (no stub:
 * also while the first copy is still arriving); STATUS_CORRUPT for a stub
 * that names no slot; STATUS_IO. */
enum status shard_set_replica_live(const struct shard_set *set, unsigned n,
				   char **live);
/* Makes shard n's replica this host's writable shard n: moves the replica's
 * directory aside (readers then open the local shard), exchanges its live
 * slot with shard n of the current generation in one
 * renameat2(RENAME_EXCHANGE) (or renames it there when the generation has
 * no shard n), and removes what was moved aside (the other slot, the stub,
 * the local shard replaced).  Nothing may replicate into the replica
 * meanwhile: stop its xapian-replicate first, and wait for it.  Returns
 * STATUS_OK; STATUS_NOT_FOUND (no replica, or no current generation);
 * STATUS_IO with the message in shard_set_errmsg(). */
enum status shard_set_promote(struct shard_set *set, unsigned n);

/* The number of shards of the open generation left out of the reader
 * (0 unless shard_set_allow_missing()). */
unsigned shard_set_failed(const struct shard_set *set);
/* How many times the reader was opened anew (a new generation, shards
 * left out before) or reopened after a concurrent commit made it stale
 * (STATUS_MODIFIED), counting the first open.  For metrics. */
uint64_t shard_set_opens(const struct shard_set *set);

/* A document that holds a redirect. */
struct shard_redirect_holder {
	uint64_t page_id;
	int ns;
};
/* Sets *holders (caller frees) and *n to the live documents that hold the
 * redirect page redirect_page_id (its XRI term), as the newest commits
 * have them (the reader is reopened first).  Opens the reader if needed.
 * Returns STATUS_OK (also for none: *holders NULL, *n 0) or the reader's
 * error. */
enum status shard_set_redirect_holders(struct shard_set *set,
				       uint64_t redirect_page_id,
				       struct shard_redirect_holder **holders,
				       size_t *n);
/* As shard_set_redirect_holders(), in one shard open for writing, pending
 * writes included. */
enum status shard_redirect_holders(struct shard *sh, uint64_t redirect_page_id,
				   struct shard_redirect_holder **holders,
				   size_t *n);
/* The shard a hit of the combined reader comes from. */
unsigned shard_set_hit_shard(const struct shard_set *set, uint32_t docid);

/* Sets *codes to the languages the current generation's shards were
 * written in (the language of each analyzer they recorded, see
 * shard_check_analyzer(): "de" for pages in "de-ch"), sorted and distinct,
 * and *n to how many (0 for empty shards, *codes then NULL).  The caller
 * frees each code and the array.  Each shard is opened read-only for the
 * call (works while a writer writes).  STATUS_NOT_FOUND when there is no
 * current generation. */
enum status shard_set_languages(struct shard_set *set, char ***codes,
				size_t *n);

struct shard_stats {
	uint64_t docs;        /* live documents */
	uint64_t dead;        /* dead documents waiting for the purge */
	int64_t last_commit;  /* unix seconds of the last commit, 0 if none */
	uint64_t fence;       /* stored fencing token, 0 if none */
	uint64_t revision;    /* Xapian revision */
	uint64_t bytes;       /* size of the shard's files on disk */
	unsigned schema;      /* stored schema version, 0 if none */
	char position[64];    /* stored stream position of partition n,
	                         "" if none */
};
/* Fills *st for shard n of the current generation (opened read-only for
 * the call; works while a writer writes). */
enum status shard_set_stats(struct shard_set *set, unsigned n,
			    struct shard_stats *st);
/* As shard_set_stats(), for the live slot of shard n's replica
 * (STATUS_NOT_FOUND when the host has none). */
enum status shard_set_replica_stats(struct shard_set *set, unsigned n,
				    struct shard_stats *st);

/* Sets *stream_id (caller frees) to the position that shard n of the
 * current generation stores for partition (the stream key), as
 * shard_get_position() would, opening the shard read-only for the call
 * (works while a writer writes).  STATUS_NOT_FOUND when the shard stores
 * none, or when there is no current generation or no such shard. */
enum status shard_set_read_position(struct shard_set *set, unsigned n,
				    const char *partition, char **stream_id);

#endif
