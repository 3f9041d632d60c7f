/*
 * reindex.c: reindex-page, the operator's reindexing tool.
 *
 * Three ways to run:
 *
 *   direct (default)  fetch each selected page, build its document exactly as
 *                     the worker does (document.h), and replace or delete it
 *                     in its shard of the live generation.  It writes a shard
 *                     only while holding the partition's lease (as a worker
 *                     does, with a fencing token) and Xapian's write lock; if
 *                     a worker holds either, it stops and says to use --queue.
 *   --queue           append one page_rerender event per selected page to the
 *                     page's partition stream; the workers do the rest.
 *   --dry-run         build the documents and print them; write nothing.
 *   --rebuild         build a whole new generation from --all beside the
 *                     live one and swap `current` when it is complete and its
 *                     document count agrees with the wiki (see rebuild()).
 *
 * Invariants: every selected page is accounted for exactly once as indexed,
 * unchanged (no-op or older revision), deleted (gone from the wiki, hidden,
 * or outside the wiki's namespaces) or failed; the exit status is 0 only
 * when none failed.  Nothing reaches a shard except through shard_commit()
 * with the token of a lease we hold, or into a new generation no one else
 * can see yet.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "document.h"
#include "event.h"
#include "extract.h"
#include "fetch.h"
#include "lease.h"
#include "loader.h"
#include "log.h"
#include "now.h"
#include "pagelist.h"
#include "progress.h"
#include "redis.h"
#include "shard.h"
#include "stream.h"
#include "tool.h"
#include "xmalloc.h"

#define PROG "reindex-page"
#define MAX_TRIES 5

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--config FILE] --wiki WIKI [--queue|--dry-run] SELECTION...\n"
		"       " PROG " [--config FILE] --wiki WIKI --rebuild\n"
		"\n"
		"SELECTION (any mix):\n"
		"  --title T           a page by title (repeatable)\n"
		"  --page-id N         a page by id (repeatable)\n"
		"  --from-id A --to-id B   every page with A <= id <= B\n"
		"  --namespace N       every page of namespace N (repeatable)\n"
		"  --embedded-in T     every page that transcludes T, e.g. a template (repeatable)\n"
		"  --all               every page of the wiki's configured namespaces\n"
		"\n"
		"  --queue             enqueue page_rerender events for the workers instead\n"
		"  --dry-run           print the documents and their terms; write nothing\n"
		"  --rebuild           build a new generation from --all, then swap it in\n"
		"  --quiet             no progress output\n"
		"  --config FILE       configuration (default: $FRESHET_CONFIG, else defaults)\n"
		"  --wiki WIKI         the wiki (may be omitted if only one is configured)\n"
		"  --help              this text\n"
		"\n"
		"Exit status: 0 every page indexed, 1 some failed, 2 usage error.\n");
}

/* ------------------------------------------------------------ the run */

/* What became of a page. */
enum outcome { OUT_NONE, OUT_PRESENT, OUT_ABSENT, OUT_FAILED };

struct page {
	int64_t page_id;
	int ns;
	char *title;      /* as the API lists it (spaces), "" if unknown */
	int tries;
	bool missing;     /* the API says the page does not exist */
	enum outcome outcome;
	int64_t rev_id, rev_timestamp;  /* as listed (0 when unknown) */
};

/* An open-addressing set of page ids (0 is never a page id), so that
 * selecting a million pages stays linear. */
struct idset {
	int64_t *v;
	size_t cap, n;   /* cap is a power of two */
};

/* Adds id; returns false when it was there already. */
static bool idset_add(struct idset *s, int64_t id)
{
	if (2 * (s->n + 1) > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		int64_t *nv = xcalloc(ncap, sizeof *nv);
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->v[i])
				continue;
			size_t h = (size_t)((uint64_t)s->v[i] * 0x9E3779B97F4A7C15ull) & (ncap - 1);
			while (nv[h])
				h = (h + 1) & (ncap - 1);
			nv[h] = s->v[i];
		}
		free(s->v);
		s->v = nv;
		s->cap = ncap;
	}
	size_t h = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
	while (s->v[h]) {
		if (s->v[h] == id)
			return false;
		h = (h + 1) & (s->cap - 1);
	}
	s->v[h] = id;
	s->n++;
	return true;
}

static bool idset_has(const struct idset *s, int64_t id)
{
	if (!s->cap)
		return false;
	size_t h = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
	while (s->v[h]) {
		if (s->v[h] == id)
			return true;
		h = (h + 1) & (s->cap - 1);
	}
	return false;
}

static void idset_clear(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

struct run {
	struct conf *cfg;
	const struct conf_wiki *w;
	bool dry_run, queue, quiet;

	struct page *pages;
	size_t n_pages, cap_pages;
	struct idset seen;        /* ids in pages[] (see add_page) */
	bool fatal;               /* a shard cannot be written: stop */
	bool hold_leases;         /* rebuild catch-up: renew every lease */
	bool holding;             /* rebuild: we hold the wiki (lease_hold) */

	/* direct mode */
	struct loader *ld;
	struct fetch_wiki *fw;
	struct fetch *fetch;
	struct document_builder *doc; /* analyzers per language, extractor */
	struct shard_set *set;
	char *generation;         /* the generation written */
	struct shard **shards;    /* writers, opened on first use */
	uint64_t *tokens;         /* fencing token per shard */
	int64_t *first_pending;   /* ms of the oldest uncommitted write */
	unsigned n_shards;
	bool new_generation;      /* rebuild: no lease needed */

	struct redis *redis;
	struct lease *lease;
	struct stream *stream;

	struct progress *prog;
	uint64_t indexed, unchanged, deleted, failed;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void add_page(struct run *r, int64_t id, int ns, const char *title, bool missing)
{
	/* A page named twice (by title and by id) is done once. */
	if (!idset_add(&r->seen, id))
		return;
	if (r->n_pages == r->cap_pages) {
		r->cap_pages = r->cap_pages ? r->cap_pages * 2 : 256;
		r->pages = xrealloc(r->pages, r->cap_pages * sizeof *r->pages);
	}
	r->pages[r->n_pages++] = (struct page){ .page_id = id, .ns = ns,
		.title = xstrdup(title ? title : ""), .missing = missing };
}

/* add_page() for a listed page, keeping its revision and time. */
static void add_listed(struct run *r, const struct pagelist_entry *x)
{
	size_t before = r->n_pages;
	add_page(r, x->page_id, x->namespace_id, x->title, x->missing);
	if (r->n_pages > before) {
		r->pages[before].rev_id = x->rev_id;
		r->pages[before].rev_timestamp = x->rev_timestamp;
	}
}

/* ------------------------------------------------------------ selection */

struct selection {
	const char **titles;
	size_t n_titles;
	int64_t *ids;
	size_t n_ids;
	int64_t from_id, to_id;   /* 0 = none */
	int *namespaces;
	size_t n_namespaces;
	const char **embedded;    /* --embedded-in: pages transcluding these */
	size_t n_embedded;
	bool all;
	bool redirects;           /* list redirect pages too (--rebuild) */
};

/* Turns the selection into r->pages.  Returns false (message printed) when
 * the API could not be asked. */
static bool select_pages(struct run *r, const struct selection *sel)
{
	char *ua = fetch_user_agent(r->w->user_agent_contact);
	struct pagelist *pl = pagelist_new(r->w->api, ua);
	free(ua);
	struct pagelist_entries e = { 0 };
	enum status st = STATUS_OK;
	if (sel->n_titles)
		st = pagelist_by_titles(pl, sel->titles, sel->n_titles, &e);
	if (st == STATUS_OK && sel->n_ids)
		st = pagelist_by_ids(pl, sel->ids, sel->n_ids, &e);
	if (st == STATUS_OK && sel->from_id) {
		/* Ids in batches of 500 so a wide range does not hold every id. */
		for (int64_t a = sel->from_id; a <= sel->to_id && st == STATUS_OK; a += 500) {
			int64_t b = a + 499 < sel->to_id ? a + 499 : sel->to_id;
			int64_t ids[500];
			size_t n = 0;
			for (int64_t x = a; x <= b; x++)
				ids[n++] = x;
			struct pagelist_entries part = { 0 };
			st = pagelist_by_ids(pl, ids, n, &part);
			for (size_t i = 0; i < part.n && st == STATUS_OK; i++) {
				/* A range selects existing pages of the configured
				 * namespaces; ids that name nothing are left alone. */
				if (!part.v[i].missing && !part.v[i].redirect &&
				    conf_wiki_indexes(r->w, part.v[i].namespace_id))
					add_listed(r, &part.v[i]);
			}
			pagelist_entries_free(&part);
		}
	}
	if (st == STATUS_OK) {
		for (size_t i = 0; i < e.n; i++) {
			struct pagelist_entry *x = &e.v[i];
			if (x->missing && !x->page_id) {
				fprintf(stderr, PROG ": no page titled '%s' in %s\n", x->title,
					r->w->id);
				r->failed++;
				continue;
			}
			add_listed(r, x);
		}
	}
	pagelist_entries_free(&e);
	for (size_t k = 0; k < sel->n_embedded && st == STATUS_OK; k++) {
		struct pagelist_entries part = { 0 };
		st = pagelist_embeddedin(pl, sel->embedded[k], &part);
		if (st == STATUS_OK && part.n == 0)
			fprintf(stderr, PROG ": no page transcludes '%s'\n", sel->embedded[k]);
		for (size_t i = 0; i < part.n; i++)
			add_listed(r, &part.v[i]);
		pagelist_entries_free(&part);
	}
	/* Namespaces: the named ones, or with --all every configured one.
	 * Redirect pages are left out, except for a rebuild: the workers
	 * index a redirect page when an event names it (a move that leaves
	 * one), so a generation built to replace theirs must hold them too,
	 * or its count would never match the wiki's. */
	size_t n_ns = sel->all ? r->w->n_namespaces : sel->n_namespaces;
	const int *nss = sel->all ? r->w->namespaces : sel->namespaces;
	for (size_t k = 0; k < n_ns && st == STATUS_OK; k++) {
		struct pagelist_entries part = { 0 };
		st = pagelist_allpages(pl, nss[k], sel->redirects, &part);
		for (size_t i = 0; i < part.n; i++)
			add_listed(r, &part.v[i]);
		pagelist_entries_free(&part);
	}
	if (st != STATUS_OK)
		fprintf(stderr, PROG ": listing pages of %s: %s\n", r->w->id,
			pagelist_errmsg(pl));
	pagelist_free(pl);
	return st == STATUS_OK;
}

/* --------------------------------------------------------------- queue */

static int run_queue(struct run *r)
{
	enum status st;
	if (!r->stream) {
		struct stream_opts o = { .wiki = r->w->id, .partitions = r->w->shards };
		char err[256];
		if (!r->redis)
			r->redis = tool_redis(PROG, r->cfg, 0);
		r->stream = stream_new(NULL, r->redis, &o, err, sizeof err);
		if (!r->stream) {
			fprintf(stderr, PROG ": %s\n", err);
			return TOOL_EXIT_USAGE;
		}
		st = stream_setup(r->stream);
		if (st != STATUS_OK) {
			fprintf(stderr, PROG ": %s: %s\n", r->w->id, stream_errmsg(r->stream));
			return st == STATUS_CONFIG ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
		}
	}
	for (size_t i = 0; i < r->n_pages && !interrupted; i++) {
		struct page *p = &r->pages[i];
		/* The event carries the title as a db key (underscores). */
		char *title = xstrdup(*p->title ? p->title : "-");
		for (char *c = title; *c; c++)
			if (*c == ' ')
				*c = '_';
		struct event ev = {
			.kind = p->missing ? EVENT_DELETE : EVENT_RERENDER,
			.wiki = (char *)r->w->id,
			.page_id = p->page_id,
			.title = title,
			.namespace_id = p->ns,
		};
		char *json = event_encode(&ev);
		char id[STREAM_ID_MAX];
		st = stream_produce(r->stream, p->page_id, json, strlen(json), id);
		if (st == STATUS_OK) {
			r->indexed++;
			p->outcome = OUT_PRESENT;
			log_debug("action=queued wiki=%s page=%" PRId64 " id=%s", r->w->id,
				  p->page_id, id);
		} else {
			fprintf(stderr, PROG ": queueing page %" PRId64 ": %s\n", p->page_id,
				stream_errmsg(r->stream));
			r->failed++;
			p->outcome = OUT_FAILED;
		}
		free(json);
		free(title);
		if (r->prog)
			progress_add(r->prog, 1, st == STATUS_OK ? 0 : 1);
	}
	return r->failed || interrupted ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* -------------------------------------------------------------- shards */

/* Opens the writer of shard n (first use): takes the partition's lease
 * unless the generation is new, then Xapian's lock. */
static enum status open_shard(struct run *r, unsigned n)
{
	if (r->shards[n])
		return STATUS_OK;
	if (r->fatal)
		return STATUS_INVALID;
	/* Any failure to open a shard stops the run: every later page of that
	 * shard would fail the same way. */
	r->fatal = true;
	if (!r->new_generation) {
		uint64_t token = 0;
		enum status st = lease_acquire(r->lease, (int)n, &token);
		if (st == STATUS_LOCKED) {
			fprintf(stderr, PROG ": a worker holds partition %u of %s: use --queue "
				"(or stop the workers)\n", n, r->w->id);
			return st;
		}
		if (st != STATUS_OK) {
			fprintf(stderr, PROG ": lease of partition %u: %s\n", n,
				lease_errmsg(r->lease));
			return st;
		}
		r->tokens[n] = token;
	}
	char *path = shard_set_path(r->set, r->generation, n);
	struct shard *sh = shard_new();
	enum status st = shard_open(sh, path, SHARD_CREATE);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": shard %u (%s): %s%s\n", n, path, shard_errmsg(sh),
			st == STATUS_LOCKED ? " (another writer: use --queue)" : "");
		shard_free(sh);
		free(path);
		return st;
	}
	free(path);
	if (r->new_generation) {
		uint64_t fence = 0;
		shard_get_fence(sh, &fence);
		r->tokens[n] = fence;
	}
	r->shards[n] = sh;
	r->fatal = false;
	return STATUS_OK;
}

static enum status commit_shard(struct run *r, unsigned n)
{
	struct shard *sh = r->shards[n];
	if (!sh || shard_pending(sh, NULL) == 0)
		return STATUS_OK;
	if (!r->new_generation && lease_renew(r->lease, (int)n) != STATUS_OK) {
		fprintf(stderr, PROG ": lost the lease of partition %u: %s\n", n,
			lease_errmsg(r->lease));
		return STATUS_FENCED;
	}
	enum status st = shard_commit(sh, r->tokens[n]);
	if (st != STATUS_OK)
		fprintf(stderr, PROG ": commit of shard %u: %s\n", n, shard_errmsg(sh));
	return st;
}

/* Commits the shards whose oldest write is older than commit_ms, or that
 * hold commit_docs writes; all of them when `all`. */
static enum status commit_due(struct run *r, bool all)
{
	enum status worst = STATUS_OK;
	int64_t t = now_ms();
	for (unsigned n = 0; n < r->n_shards; n++) {
		if (!r->shards[n])
			continue;
		int64_t since = 0;
		size_t pending = shard_pending(r->shards[n], &since);
		if (!pending)
			continue;
		if (all || pending >= (size_t)r->cfg->commit_docs ||
		    t - since >= r->cfg->commit_ms) {
			enum status st = commit_shard(r, n);
			if (st != STATUS_OK)
				worst = st;
		} else if (!r->new_generation &&
			   lease_renew(r->lease, (int)n) != STATUS_OK) {
			worst = STATUS_FENCED;
		}
	}
	return worst;
}

/* ------------------------------------------------------- direct, dry run */

/* Prints a document for --dry-run: its dump, grouped by field. */
static void print_dry(struct run *r, const struct fetch_result *fr, struct shard_doc *d)
{
	(void)r;
	char *dump = shard_doc_dump(d);
	printf("==== page %" PRIu64 " rev %" PRIu64 " (%s) shard %u\n", fr->page_id,
	       fr->rev_id, fr->title ? fr->title : "", shard_route(fr->page_id,
								    r->n_shards));
	/* The dump lists data and values, then one line per term in term
	 * order; group the term lines by the field their prefix names. */
	static const struct { const char *prefix, *field; } fields[] = {
		{ "ZXH", "headings, stemmed" }, { "ZXA", "auxiliary text, stemmed" },
		{ "ZS", "title, stemmed" }, { "XNS", "namespace (boolean)" },
		{ "XH", "headings" }, { "XA", "auxiliary text" },
		{ "XC", "categories (boolean)" }, { "Q", "unique id (boolean)" },
		{ "S", "title" }, { "Z", "text, stemmed" }, { "L", "language (boolean)" },
		{ "", "text" },
	};
	size_t nf = sizeof fields / sizeof fields[0];
	struct buf *groups = xcalloc(nf, sizeof *groups);
	size_t *counts = xcalloc(nf, sizeof *counts);
	struct buf head = BUF_INIT;
	for (char *line = dump, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		size_t len = next ? (size_t)(next - line) : strlen(line);
		if (next)
			next++;
		/* Term lines look like "<term> wdf=N ..." (a category term may
		 * hold spaces); the head (data, values) comes first. */
		bool is_term = strncmp(line, "data: ", 6) != 0 &&
			       strncmp(line, "value ", 6) != 0 &&
			       memmem(line, len, " wdf=", 5) != NULL;
		if (!is_term) {
			buf_add(&head, line, len);
			buf_addch(&head, '\n');
			continue;
		}
		size_t k = 0;
		for (; k < nf; k++) {
			size_t pl = strlen(fields[k].prefix);
			/* A prefix of capitals is followed by the term; plain terms
			 * start with anything but an ASCII capital. */
			if (pl == 0) {
				if (!(line[0] >= 'A' && line[0] <= 'Z'))
					break;
				continue;
			}
			if (len > pl && strncmp(line, fields[k].prefix, pl) == 0)
				break;
		}
		if (k == nf)
			k = nf - 1;
		buf_adds(&groups[k], "    ");
		buf_add(&groups[k], line, len);
		buf_addch(&groups[k], '\n');
		counts[k]++;
	}
	fputs(head.data, stdout);
	static const int order[] = { 7, 8, 2, 4, 0, 11, 9, 5, 1, 6, 3, 10 };
	for (size_t i = 0; i < nf; i++) {
		size_t k = (size_t)order[i];
		if (!counts[k])
			continue;
		printf("  %s: %zu term%s\n%s", fields[k].field, counts[k],
		       counts[k] == 1 ? "" : "s", groups[k].data);
	}
	for (size_t i = 0; i < nf; i++)
		buf_release(&groups[i]);
	free(groups);
	free(counts);
	buf_release(&head);
	free(dump);
}

/* Counts a page whose shard write failed, saying why. */
static void write_failed(struct run *r, struct page *p, unsigned n,
			 const struct fetch_result *fr)
{
	if (r->shards[n])
		fprintf(stderr, PROG ": page %" PRIu64 ": %s\n", fr->page_id,
			shard_errmsg(r->shards[n]));
	r->failed++;
	p->outcome = OUT_FAILED;
}

/* Applies one fetch result: index, delete, or count a failure.  Returns
 * true when the page is done, false when it should be fetched again. */
static bool apply(struct run *r, struct fetch_result *fr, struct page *p)
{
	unsigned n = shard_route(fr->page_id, r->n_shards);
	enum status st = STATUS_OK;
	switch (fr->cls) {
	case FETCH_OK: {
		if (!conf_wiki_indexes(r->w, fr->ns)) {
			/* Moved out of the indexed namespaces: not searchable. */
			goto delete;
		}
		struct shard_doc *d = NULL;
		struct document_analysis an;
		/* The revision's time: as the API gave it, else as listed when
		 * the fetched revision is the listed one, else it is newer than
		 * the listing, i.e. about now. */
		int64_t ts = fetch_result_rev_timestamp(fr);
		if (!ts)
			ts = p->rev_id && (uint64_t)p->rev_id == fr->rev_id
			     ? p->rev_timestamp : (int64_t)time(NULL);
		st = document_build(r->doc, fr, r->w->api, ts, &d, &an);
		if (st != STATUS_OK) {
			fprintf(stderr, PROG ": page %" PRIu64 ": building the document: %s\n",
				fr->page_id, document_builder_errmsg(r->doc));
			r->failed++;
			p->outcome = OUT_FAILED;
			return true;
		}
		if (r->dry_run) {
			print_dry(r, fr, d);
			shard_doc_free(d);
			r->indexed++;
			p->outcome = OUT_PRESENT;
			return true;
		}
		st = open_shard(r, n);
		if (st == STATUS_OK)
			st = shard_check_analyzer(r->shards[n], an.language, an.name,
						  an.version);
		if (st == STATUS_OK)
			st = shard_replace(r->shards[n], d);
		shard_doc_free(d);
		if (st == STATUS_OK) {
			r->indexed++;
			p->outcome = OUT_PRESENT;
		} else if (st == STATUS_NOOP || st == STATUS_SKIPPED) {
			r->unchanged++;
			p->outcome = OUT_PRESENT;
		} else {
			write_failed(r, p, n, fr);
		}
		log_debug("action=%s wiki=%s page=%" PRIu64 " rev=%" PRIu64,
			  st == STATUS_OK ? "indexed" : status_str(st), r->w->id,
			  fr->page_id, fr->rev_id);
		return true;
	}
	case FETCH_MISSING:
	case FETCH_HIDDEN:
	delete:
		if (r->dry_run) {
			printf("==== page %" PRIu64 ": would be deleted from the index (%s)\n",
			       fr->page_id, fr->cls == FETCH_OK ? "namespace not indexed"
			       : fetch_class_str(fr->cls));
			r->deleted++;
			p->outcome = OUT_ABSENT;
			return true;
		}
		st = open_shard(r, n);
		if (st == STATUS_OK)
			st = shard_delete(r->shards[n], fr->page_id);
		if (st == STATUS_OK || st == STATUS_NOOP) {
			r->deleted++;
			p->outcome = OUT_ABSENT;
		} else {
			write_failed(r, p, n, fr);
		}
		return true;
	case FETCH_LAGGING:
	case FETCH_TRANSIENT:
		if (++p->tries < MAX_TRIES)
			return false;
		/* fall through */
	case FETCH_PERMANENT:
	default:
		fprintf(stderr, PROG ": page %" PRIu64 " (%s): %s: %s\n", fr->page_id,
			p->title, fetch_class_str(fr->cls), fr->error ? fr->error : "");
		r->failed++;
		p->outcome = OUT_FAILED;
		return true;
	}
}

/* Fetches and applies r->pages[from..to), keeping `concurrency` fetches in
 * flight.  Returns false when a shard could not be opened or committed (the
 * run cannot go on). */
static bool renew_all(struct run *r);

static bool process(struct run *r, size_t from, size_t to)
{
	size_t next = from, done = 0, total = to - from;
	size_t window = (size_t)(r->w->concurrency > 0 ? r->w->concurrency : 8) * 2;
	/* Pages waiting for a retry, with the time they may go again. */
	struct retry { size_t idx; int64_t at; } *retry = xcalloc(total ? total : 1,
								  sizeof *retry);
	size_t n_retry = 0;
	bool ok = true;
	int64_t last_renew = now_ms();
	while (done < total && !interrupted && ok) {
		int64_t t = now_ms();
		for (size_t i = 0; i < n_retry && fetch_pending(r->fetch) < window;) {
			if (retry[i].at <= t) {
				size_t idx = retry[i].idx;
				fetch_submit(r->fetch, r->fw, (uint64_t)r->pages[idx].page_id, 0,
					     (void *)(uintptr_t)idx);
				retry[i] = retry[--n_retry];
			} else {
				i++;
			}
		}
		while (next < to && fetch_pending(r->fetch) < window) {
			fetch_submit(r->fetch, r->fw, (uint64_t)r->pages[next].page_id, 0,
				     (void *)(uintptr_t)next);
			next++;
		}
		if (fetch_run(r->fetch, 100) != STATUS_OK) {
			fprintf(stderr, PROG ": fetch: %s\n", fetch_errmsg(r->fetch));
			ok = false;
			break;
		}
		struct fetch_result *fr;
		while ((fr = fetch_next(r->fetch))) {
			size_t idx = (size_t)(uintptr_t)fr->userdata;
			/* One thread here: the parse answer is decoded where
			 * it is used (it may still turn out lagging or bad). */
			fetch_result_decode(fr);
			uint64_t failed_before = r->failed;
			if (apply(r, fr, &r->pages[idx])) {
				done++;
				if (r->prog)
					progress_add(r->prog, 1, r->failed - failed_before);
			} else {
				retry[n_retry].idx = idx;
				retry[n_retry].at = now_ms() + (fr->retry_after_ms > 0
							       ? fr->retry_after_ms : 1000);
				n_retry++;
			}
			fetch_result_free(fr);
		}
		if (!r->dry_run && commit_due(r, false) != STATUS_OK)
			ok = false;
		if (r->hold_leases && now_ms() - last_renew >= r->cfg->lease_ms / 3) {
			if (!renew_all(r))
				ok = false;
			last_renew = now_ms();
		}
		if (r->fatal)
			ok = false;
	}
	free(retry);
	return ok && !interrupted;
}

/* Sets up what direct, dry-run and rebuild share.  Returns an exit code, or
 * -1 to go on. */
static int setup_direct(struct run *r)
{
	if (fetch_global_init() != STATUS_OK) {
		fprintf(stderr, PROG ": curl_global_init failed\n");
		return TOOL_EXIT_FAIL;
	}
	r->ld = loader_new();
	const char *adir = conf_analyzer_dir(r->cfg);
	if (loader_load_dir(r->ld, adir) != STATUS_OK) {
		fprintf(stderr, PROG ": analyzers in %s: %s\n", adir, loader_errmsg(r->ld));
		return TOOL_EXIT_USAGE;
	}
	struct fetch_wiki_config fc;
	fetch_wiki_config_init(&fc);
	fc.name = r->w->id;
	fc.api = r->w->api;
	fc.language = r->w->language;
	fc.user_agent_contact = r->w->user_agent_contact;
	fc.concurrency = r->w->concurrency;
	fc.rate = r->w->rate;
	char *err = NULL;
	r->fw = fetch_wiki_new(&fc, &err);
	if (!r->fw) {
		fprintf(stderr, PROG ": wiki %s: %s\n", r->w->id, err ? err : "");
		free(err);
		return TOOL_EXIT_USAGE;
	}
	r->fetch = fetch_new();
	r->doc = document_builder_new(r->ld);
	r->set = shard_set_new(r->cfg->data_dir, r->w->id);
	return -1;
}

/* Opens the live generation for direct writes, creating an empty one when
 * the wiki has no index yet. */
static int open_live(struct run *r)
{
	enum status st = shard_set_current(r->set, &r->generation);
	if (st == STATUS_NOT_FOUND) {
		r->generation = shard_generation_name();
		st = shard_set_create(r->set, r->generation, (unsigned)r->w->shards);
		if (st == STATUS_OK)
			st = shard_set_swap(r->set, r->generation);
		if (st == STATUS_OK)
			log_info("action=created wiki=%s generation=%s shards=%d", r->w->id,
				 r->generation, r->w->shards);
	}
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s: %s\n", r->w->id, shard_set_errmsg(r->set));
		return TOOL_EXIT_FAIL;
	}
	unsigned n = 0;
	if (shard_set_count(r->set, r->generation, &n) != STATUS_OK || n == 0) {
		fprintf(stderr, PROG ": %s: generation %s has no shards\n", r->w->id,
			r->generation);
		return TOOL_EXIT_FAIL;
	}
	if (n != (unsigned)r->w->shards) {
		fprintf(stderr, PROG ": %s: the index has %u shards but the configuration "
			"says %d: rebuild it (--rebuild)\n", r->w->id, n, r->w->shards);
		return TOOL_EXIT_USAGE;
	}
	r->n_shards = n;
	r->shards = xcalloc(n, sizeof *r->shards);
	r->tokens = xcalloc(n, sizeof *r->tokens);
	r->redis = tool_redis(PROG, r->cfg, 0);
	r->lease = lease_new(r->redis, r->w->id, r->w->shards, NULL, r->cfg->lease_ms);
	if (!r->lease) {
		fprintf(stderr, PROG ": cannot manage the leases of %s\n", r->w->id);
		return TOOL_EXIT_FAIL;
	}
	return -1;
}

static void close_shards(struct run *r)
{
	for (unsigned n = 0; r->shards && n < r->n_shards; n++) {
		if (!r->shards[n])
			continue;
		shard_close(r->shards[n]);
		shard_free(r->shards[n]);
		r->shards[n] = NULL;
		if (r->lease && r->tokens[n] && !r->new_generation)
			lease_release(r->lease, (int)n);
	}
}

/* -------------------------------------------------------------- rebuild */

/* The pages named by stream entries after *pos in partition key (pos is
 * advanced to the last entry read); appended to r->pages. */
static enum status pages_since(struct run *r, const char *key, char *pos, size_t cap)
{
	for (;;) {
		enum status st;
		redisReply *rep = redis_command(r->redis, &st, "XRANGE %s (%s + COUNT 500",
						key, pos);
		if (!rep)
			return st;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
			freeReplyObject(rep);
			return STATUS_OK;
		}
		for (size_t i = 0; i < rep->elements; i++) {
			redisReply *e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			snprintf(pos, cap, "%s", e->element[0]->str);
			redisReply *f = e->element[1];
			for (size_t k = 0; k + 1 < f->elements; k += 2) {
				if (strcmp(f->element[k]->str, "event") != 0)
					continue;
				struct event *ev = NULL;
				if (event_decode(f->element[k + 1]->str, f->element[k + 1]->len, &ev,
						 NULL) != STATUS_OK)
					continue;
				add_page(r, ev->page_id, (int)ev->namespace_id, ev->title, false);
				if (ev->prior_page_id)
					add_page(r, ev->prior_page_id, 0, "", false);
				if (ev->redirect_page_id)
					add_page(r, ev->redirect_page_id, 0, "", false);
				event_free(ev);
			}
		}
		freeReplyObject(rep);
	}
}

/* The ids of the pages whose last outcome was OUT_PRESENT, into *present
 * (cleared first). */
static void present_pages(struct run *r, struct idset *present)
{
	struct idset last = { 0 };
	idset_clear(present);
	for (size_t i = r->n_pages; i-- > 0;) {
		if (!idset_add(&last, r->pages[i].page_id))
			continue;
		if (r->pages[i].outcome == OUT_PRESENT)
			idset_add(present, r->pages[i].page_id);
	}
	idset_clear(&last);
}

/* Compares the new generation with what the wiki holds now: lists every
 * page of the configured namespaces again and rewrites the pages on which
 * the two disagree (created or deleted during the build without an event
 * reaching the stream, e.g. while the extension spooled).  Sets
 * *wiki_pages to the count the wiki listed.  Returns false when the API
 * could not be asked or the run cannot go on. */
static bool reconcile_with_wiki(struct run *r, uint64_t *wiki_pages)
{
	char *ua = fetch_user_agent(r->w->user_agent_contact);
	struct pagelist *pl = pagelist_new(r->w->api, ua);
	free(ua);
	struct pagelist_entries now = { 0 };
	enum status st = STATUS_OK;
	for (size_t k = 0; k < r->w->n_namespaces && st == STATUS_OK; k++)
		st = pagelist_allpages(pl, r->w->namespaces[k], true, &now);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": listing pages of %s: %s\n", r->w->id,
			pagelist_errmsg(pl));
		pagelist_free(pl);
		pagelist_entries_free(&now);
		return false;
	}
	struct idset present = { 0 }, listed = { 0 };
	present_pages(r, &present);
	size_t from = r->n_pages;
	idset_clear(&r->seen);
	for (size_t i = 0; i < now.n; i++) {
		idset_add(&listed, now.v[i].page_id);
		if (!idset_has(&present, now.v[i].page_id))
			add_listed(r, &now.v[i]);
	}
	for (size_t i = 0; i < from; i++)
		if (r->pages[i].outcome == OUT_PRESENT &&
		    !idset_has(&listed, r->pages[i].page_id))
			add_page(r, r->pages[i].page_id, r->pages[i].ns, r->pages[i].title,
				 false);
	*wiki_pages = now.n;
	pagelist_entries_free(&now);
	pagelist_free(pl);
	idset_clear(&present);
	idset_clear(&listed);
	bool ok = true;
	if (r->n_pages > from) {
		fprintf(stderr, PROG ": %zu pages differ from the wiki's list: fetching "
			"them again\n", r->n_pages - from);
		ok = process(r, from, r->n_pages);
	}
	return ok;
}

/* True when some partition has an entry newer than pos[]. */
static bool entries_since(struct run *r, char (*pos)[STREAM_ID_MAX])
{
	for (unsigned p = 0; p < r->n_shards; p++) {
		char key[256];
		stream_key(r->stream, (int)p, key, sizeof key);
		enum status st;
		redisReply *rep = redis_command(r->redis, &st, "XRANGE %s (%s + COUNT 1",
						key, pos[p]);
		bool some = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0;
		if (rep)
			freeReplyObject(rep);
		if (some)
			return true;
	}
	return false;
}

/* Takes the wiki's hold and then the lease of every partition, waiting for
 * the workers to hand theirs over (a running worker does within a third of
 * lease_ms of seeing the hold; an older one only when stopped).  Returns
 * false when interrupted, when another rebuild holds the wiki, or when
 * Redis fails. */
static bool take_all_leases(struct run *r)
{
	if (!r->lease)
		r->lease = lease_new(r->redis, r->w->id, r->w->shards, NULL, r->cfg->lease_ms);
	if (!r->lease) {
		fprintf(stderr, PROG ": cannot manage the leases of %s\n", r->w->id);
		return false;
	}
	if (lease_hold(r->lease) != STATUS_OK) {
		fprintf(stderr, PROG ": %s\n", lease_errmsg(r->lease));
		return false;
	}
	r->holding = true;
	int64_t last_msg = now_ms(), last_renew = now_ms();
	for (;;) {
		struct buf held_by = BUF_INIT;
		for (unsigned p = 0; p < r->n_shards; p++) {
			if (r->tokens[p])
				continue;
			uint64_t token = 0;
			enum status st = lease_acquire(r->lease, (int)p, &token);
			if (st == STATUS_OK) {
				r->tokens[p] = token;
			} else if (st == STATUS_LOCKED) {
				buf_addf(&held_by, " %u", p);
			} else {
				fprintf(stderr, PROG ": lease of partition %u: %s\n", p,
					lease_errmsg(r->lease));
				buf_release(&held_by);
				return false;
			}
		}
		if (!held_by.len)
			return true;
		int64_t t = now_ms();
		if (t - last_msg >= 30000) {
			fprintf(stderr, PROG ": the new generation is ready; waiting for the "
				"workers to hand over partition(s)%s of %s (a worker that does "
				"not must be stopped, and started again after the swap)\n",
				held_by.data, r->w->id);
			last_msg = t;
		}
		buf_release(&held_by);
		if (t - last_renew >= r->cfg->lease_ms / 3) {
			if (!renew_all(r))
				return false;
			last_renew = t;
		}
		if (interrupted)
			return false;
		struct timespec ts = { 0, 500 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Renews the hold and every held lease (during a rebuild's catch-up). */
static bool renew_all(struct run *r)
{
	if (r->holding && lease_hold(r->lease) != STATUS_OK) {
		fprintf(stderr, PROG ": lost the hold of %s: %s\n", r->w->id,
			lease_errmsg(r->lease));
		return false;
	}
	for (unsigned p = 0; p < r->n_shards; p++)
		if (r->tokens[p] && lease_renew(r->lease, (int)p) != STATUS_OK) {
			fprintf(stderr, PROG ": lost the lease of partition %u: %s\n", p,
				lease_errmsg(r->lease));
			return false;
		}
	return true;
}

static void release_all(struct run *r)
{
	for (unsigned p = 0; r->lease && r->tokens && p < r->n_shards; p++)
		if (r->tokens[p]) {
			lease_release(r->lease, (int)p);
			r->tokens[p] = 0;
		}
	if (r->holding) {
		lease_unhold(r->lease);
		r->holding = false;
	}
}

/*
 * --rebuild:
 *  1. note each partition's newest entry id (the start position);
 *  2. create a new generation and index every page of --all into it, while
 *     the workers go on updating the live generation;
 *  3. take every partition's lease, waiting for the workers to release them
 *     (a running worker keeps its shards of the old generation open, so it
 *     must stop before the swap: the command says so and waits);
 *  4. catch up: fetch again every page named by a stream entry newer than
 *     the start position (what the workers applied to the old generation
 *     during the build, and what no one applied yet), and record the last
 *     entry seen as each shard's stream position;
 *  5. check the count: documents == distinct pages whose last outcome was
 *     "indexed", and no page failed;
 *  6. swap `current` atomically and release the leases.  Entries after the
 *     catch-up are still in the streams: the workers, started again, apply
 *     them to the new generation.
 * Until step 6 the live generation is untouched, so searches never see a
 * half-built index; a failed rebuild leaves its generation on disk for
 * inspection and `current` where it was.
 */
static int run_rebuild(struct run *r)
{
	r->redis = tool_redis(PROG, r->cfg, 0);
	struct stream_opts so = { .wiki = r->w->id, .partitions = r->w->shards };
	char err[256];
	r->stream = stream_new(NULL, r->redis, &so, err, sizeof err);
	if (!r->stream) {
		fprintf(stderr, PROG ": %s\n", err);
		return TOOL_EXIT_USAGE;
	}
	enum status st = stream_setup(r->stream);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s: %s\n", r->w->id, stream_errmsg(r->stream));
		return st == STATUS_CONFIG ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	}
	unsigned ns = (unsigned)r->w->shards;
	char (*pos)[STREAM_ID_MAX] = xcalloc(ns, sizeof *pos);
	for (unsigned p = 0; p < ns; p++) {
		char key[256];
		stream_key(r->stream, (int)p, key, sizeof key);
		redisReply *rep = redis_command(r->redis, &st, "XREVRANGE %s + - COUNT 1", key);
		if (!rep) {
			fprintf(stderr, PROG ": %s: %s\n", key, redis_errmsg(r->redis));
			free(pos);
			return TOOL_EXIT_FAIL;
		}
		snprintf(pos[p], STREAM_ID_MAX, "%s",
			 rep->type == REDIS_REPLY_ARRAY && rep->elements == 1
			 ? rep->element[0]->element[0]->str : "0-0");
		freeReplyObject(rep);
		log_info("action=rebuild-start wiki=%s partition=%u position=%s", r->w->id,
			 p, pos[p]);
	}

	r->generation = shard_generation_name();
	st = shard_set_create(r->set, r->generation, ns);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s\n", shard_set_errmsg(r->set));
		free(pos);
		return TOOL_EXIT_FAIL;
	}
	r->new_generation = true;
	r->n_shards = ns;
	r->shards = xcalloc(ns, sizeof *r->shards);
	r->tokens = xcalloc(ns, sizeof *r->tokens);
	fprintf(stderr, PROG ": building generation %s of %s (%zu pages)\n", r->generation,
		r->w->id, r->n_pages);

	size_t listed = r->n_pages;
	bool ok = process(r, 0, r->n_pages);
	if (ok && commit_due(r, true) != STATUS_OK)
		ok = false;
	if (r->prog) {
		progress_finish(r->prog);
		r->prog = NULL;
	}

	/* 3. The leases: from here on no worker writes the old generation. */
	if (ok && !take_all_leases(r))
		ok = false;

	/* 4. Catch up.  The pages named since the start are fetched again even
	 * though they were listed (their first fetch may predate the change),
	 * so the duplicate check starts afresh. */
	size_t before = r->n_pages;
	idset_clear(&r->seen);
	for (unsigned p = 0; p < ns && ok; p++) {
		char key[256];
		stream_key(r->stream, (int)p, key, sizeof key);
		if (pages_since(r, key, pos[p], STREAM_ID_MAX) != STATUS_OK) {
			fprintf(stderr, PROG ": %s: %s\n", key, redis_errmsg(r->redis));
			ok = false;
		}
	}
	size_t caught = r->n_pages - before;
	if (ok && caught) {
		fprintf(stderr, PROG ": catching up with %zu pages changed during the build\n",
			caught);
		r->hold_leases = true;
		ok = process(r, before, r->n_pages);
		r->hold_leases = false;
	}
	/* The wiki's own list is the reference for the count. */
	uint64_t wiki_pages = 0;
	if (ok) {
		r->hold_leases = true;
		ok = reconcile_with_wiki(r, &wiki_pages);
		r->hold_leases = false;
	}
	for (unsigned p = 0; p < ns && ok; p++) {
		char key[256];
		stream_key(r->stream, (int)p, key, sizeof key);
		if (open_shard(r, p) != STATUS_OK ||
		    shard_set_position(r->shards[p], key, pos[p]) != STATUS_OK)
			ok = false;
	}
	if (ok && commit_due(r, true) != STATUS_OK)
		ok = false;
	if (ok)
		ok = renew_all(r);

	/* 5. The count. */
	uint64_t docs = 0;
	for (unsigned p = 0; p < ns && ok; p++) {
		uint64_t c = 0;
		if (shard_doc_count(r->shards[p], &c) != STATUS_OK)
			ok = false;
		docs += c;
	}
	/* Close the writers, keeping the leases until the swap. */
	for (unsigned p = 0; p < ns; p++) {
		if (!r->shards[p])
			continue;
		shard_close(r->shards[p]);
		shard_free(r->shards[p]);
		r->shards[p] = NULL;
	}
	/* A page's last outcome counts (the catch-up may have fixed a failure
	 * or deleted a page indexed in the first pass). */
	uint64_t expected = 0, absent = 0, failed = 0;
	idset_clear(&r->seen);
	for (size_t i = r->n_pages; i-- > 0;) {
		if (!idset_add(&r->seen, r->pages[i].page_id))
			continue;
		switch (r->pages[i].outcome) {
		case OUT_PRESENT: expected++; break;
		case OUT_ABSENT: absent++; break;
		default: failed++; break;
		}
	}
	if (ok && (failed || docs != expected)) {
		fprintf(stderr, PROG ": rebuild of %s: %" PRIu64 " documents written, %"
			PRIu64 " expected (%zu pages listed, %" PRIu64 " gone or not indexed, %"
			PRIu64 " failed): not swapping; generation %s left for inspection\n",
			r->w->id, docs, expected, listed, absent, failed, r->generation);
		ok = false;
	}
	/* Against the wiki: a difference is acceptable only when changes that
	 * arrived after the catch-up explain it (the workers apply them). */
	if (ok && docs != wiki_pages) {
		if (entries_since(r, pos)) {
			fprintf(stderr, PROG ": %" PRIu64 " documents, the wiki lists %" PRIu64
				" pages: changes made since are queued for the workers\n",
				docs, wiki_pages);
		} else {
			fprintf(stderr, PROG ": rebuild of %s: %" PRIu64 " documents but the "
				"wiki lists %" PRIu64 " pages and no change explains it: not "
				"swapping; generation %s left for inspection\n", r->w->id, docs,
				wiki_pages, r->generation);
			ok = false;
		}
	}
	if (!ok) {
		release_all(r);
		free(pos);
		return TOOL_EXIT_FAIL;
	}

	/* 6. Swap. */
	char *old = NULL;
	shard_set_current(r->set, &old);
	st = shard_set_swap(r->set, r->generation);
	release_all(r);
	free(pos);
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": swap: %s\n", shard_set_errmsg(r->set));
		free(old);
		return TOOL_EXIT_FAIL;
	}
	fprintf(stderr, PROG ": %s now serves generation %s (%" PRIu64 " documents; "
		"previous: %s, kept: remove it once nothing reads it)\n", r->w->id,
		r->generation, docs, old ? old : "none");
	log_info("action=swapped wiki=%s generation=%s previous=%s documents=%" PRIu64,
		 r->w->id, r->generation, old ? old : "-", docs);
	free(old);
	return TOOL_EXIT_OK;
}

/* ---------------------------------------------------------------- main */

/* Frees the selection's arrays and returns rc (early exits of main). */
static int sel_done(struct selection *sel, int rc)
{
	free(sel->titles);
	free(sel->ids);
	free(sel->namespaces);
	free(sel->embedded);
	return rc;
}

int main(int argc, char **argv)
{
	const char *config = NULL, *wiki = NULL;
	struct selection sel = { 0 };
	bool rebuild = false;
	struct run r = { 0 };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "wiki", required_argument, NULL, 'w' },
		{ "title", required_argument, NULL, 't' },
		{ "page-id", required_argument, NULL, 'p' },
		{ "from-id", required_argument, NULL, 'f' },
		{ "to-id", required_argument, NULL, 'T' },
		{ "namespace", required_argument, NULL, 'n' },
		{ "embedded-in", required_argument, NULL, 'e' },
		{ "all", no_argument, NULL, 'a' },
		{ "queue", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "rebuild", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	sel.titles = xcalloc((size_t)argc, sizeof *sel.titles);
	sel.ids = xcalloc((size_t)argc, sizeof *sel.ids);
	sel.namespaces = xcalloc((size_t)argc, sizeof *sel.namespaces);
	sel.embedded = xcalloc((size_t)argc, sizeof *sel.embedded);
	int c;
	int64_t to_id = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'w': wiki = optarg; break;
		case 't':
			if (!*optarg) {
				fprintf(stderr, PROG ": --title wants a title\n");
				return sel_done(&sel, TOOL_EXIT_USAGE);
			}
			sel.titles[sel.n_titles++] = optarg;
			break;
		case 'p':
			sel.ids[sel.n_ids++] = tool_int(PROG, "--page-id", optarg, 1,
							EVENT_ID_MAX);
			break;
		case 'f': sel.from_id = tool_int(PROG, "--from-id", optarg, 1, EVENT_ID_MAX); break;
		case 'T': to_id = tool_int(PROG, "--to-id", optarg, 1, EVENT_ID_MAX); break;
		case 'n':
			sel.namespaces[sel.n_namespaces++] =
				(int)tool_int(PROG, "--namespace", optarg, 0, 1000000);
			break;
		case 'e':
			if (!*optarg) {
				fprintf(stderr, PROG ": --embedded-in wants a title\n");
				return sel_done(&sel, TOOL_EXIT_USAGE);
			}
			sel.embedded[sel.n_embedded++] = optarg;
			break;
		case 'a': sel.all = true; break;
		case 'q': r.queue = true; break;
		case 'd': r.dry_run = true; break;
		case 'R': rebuild = true; break;
		case 'Q': r.quiet = true; break;
		case 'h': usage(stdout); return sel_done(&sel, TOOL_EXIT_OK);
		default: usage(stderr); return sel_done(&sel, TOOL_EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return sel_done(&sel, TOOL_EXIT_USAGE);
	}
	if ((sel.from_id != 0) != (to_id != 0) || (sel.from_id && to_id < sel.from_id)) {
		fprintf(stderr, PROG ": --from-id and --to-id go together, with from <= to\n");
		return sel_done(&sel, TOOL_EXIT_USAGE);
	}
	sel.to_id = to_id;
	bool any = sel.n_titles || sel.n_ids || sel.from_id || sel.n_namespaces ||
		   sel.n_embedded || sel.all;
	if (rebuild) {
		if (r.queue || r.dry_run || (any && !(sel.all && !sel.n_titles && !sel.n_ids &&
						      !sel.from_id && !sel.n_namespaces &&
						      !sel.n_embedded))) {
			fprintf(stderr, PROG ": --rebuild takes no selection (it is --all) and "
				"neither --queue nor --dry-run\n");
			return sel_done(&sel, TOOL_EXIT_USAGE);
		}
		sel.all = true;
		sel.redirects = true;
	} else if (!any) {
		fprintf(stderr, PROG ": nothing selected: give --title, --page-id, "
			"--from-id/--to-id, --namespace, --embedded-in or --all\n");
		usage(stderr);
		return sel_done(&sel, TOOL_EXIT_USAGE);
	}
	if (r.queue && r.dry_run) {
		fprintf(stderr, PROG ": --queue and --dry-run exclude each other\n");
		return sel_done(&sel, TOOL_EXIT_USAGE);
	}

	r.cfg = tool_load_conf(PROG, config);
	r.w = tool_wiki(PROG, r.cfg, wiki);
	for (size_t i = 0; i < sel.n_namespaces; i++)
		if (!conf_wiki_indexes(r.w, sel.namespaces[i]))
			fprintf(stderr, PROG ": warning: namespace %d is not indexed for %s "
				"(see `namespaces` in its [wiki] section): its pages are "
				"removed from the index, not added\n", sel.namespaces[i], r.w->id);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc = -1;
	if (!r.queue) {
		rc = setup_direct(&r);
		if (rc >= 0)
			goto out;
	}
	if (!select_pages(&r, &sel)) {
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	if (!r.quiet && !r.dry_run)
		r.prog = progress_new(stderr, r.queue ? "pages queued" : "pages",
				      r.n_pages, isatty(STDERR_FILENO), 5000);
	if (r.queue) {
		rc = run_queue(&r);
	} else if (rebuild) {
		rc = run_rebuild(&r);
	} else {
		if (!r.dry_run && (rc = open_live(&r)) >= 0)
			goto out;
		if (r.dry_run)
			r.n_shards = (unsigned)r.w->shards;
		bool ok = process(&r, 0, r.n_pages);
		if (!r.dry_run && commit_due(&r, true) != STATUS_OK)
			ok = false;
		close_shards(&r);
		rc = ok && !r.failed ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
	}
out:
	if (r.prog)
		progress_finish(r.prog);
	if (rc != TOOL_EXIT_USAGE)
		fprintf(stderr, PROG ": %s: %zu pages: %" PRIu64 " %s, %" PRIu64
			" unchanged, %" PRIu64 " deleted, %" PRIu64 " failed%s\n",
			r.w ? r.w->id : "-", r.n_pages, r.indexed,
			r.queue ? "queued" : r.dry_run ? "shown" : "indexed", r.unchanged,
			r.deleted, r.failed, interrupted ? " (interrupted)" : "");
	close_shards(&r);
	free(r.shards);
	free(r.tokens);
	free(r.generation);
	for (size_t i = 0; i < r.n_pages; i++)
		free(r.pages[i].title);
	free(r.pages);
	idset_clear(&r.seen);
	stream_free(r.stream);
	lease_free(r.lease);
	redis_free(r.redis);
	shard_set_free(r.set);
	document_builder_free(r.doc);
	fetch_free(r.fetch);
	fetch_wiki_free(r.fw);
	loader_free(r.ld);
	conf_free(r.cfg);
	free(sel.titles);
	free(sel.ids);
	free(sel.namespaces);
	free(sel.embedded);
	return rc < 0 ? TOOL_EXIT_FAIL : rc;
}
