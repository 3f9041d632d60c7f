/* SPDX-License-Identifier: MIT */
/*
 * reindex-page.c: reindex-page, the operator's reindexing tool.
 *
 * Four ways to run:
 *
 *   direct (default)  fetch each selected page, build its document exactly as
 *                     the worker does, and replace or delete it in its shard
 *                     of the live generation (reindex.h).  It writes a shard
 *                     only while holding the partition's lease (as a worker
 *                     does, with a fencing token) and Xapian's write lock; if
 *                     a worker holds either, it stops and says to use --queue.
 *   --queue           append one page_rerender event per selected page to the
 *                     page's partition stream; the workers do the rest.
 *   --dry-run         build the documents and print them; write nothing.
 *   --rebuild         build a whole new generation from --all beside the
 *                     live one and swap `current` when it is complete and its
 *                     document count agrees with the wiki (rebuild.h).
 *
 * This file is the front end: the command line, the selection of pages,
 * the queue, the dry run's printout, the progress line and the summary.
 * Invariants: every selected page is accounted for exactly once as indexed,
 * unchanged (no-op or older revision), deleted (gone from the wiki, hidden,
 * or outside the wiki's namespaces) or failed; the exit status is 0 only
 * when none failed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "event.h"
#include "fetch.h"
#include "lease.h"
#include "log.h"
#include "pagelist.h"
#include "progress.h"
#include "rebuild.h"
#include "redis.h"
#include "reindex.h"
#include "replica.h"
#include "shard.h"
#include "stream.h"
#include "tool.h"
#include "xmalloc.h"

#define PROG "reindex-page"

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

struct run {
	struct conf *cfg;
	const struct conf_wiki *w;
	bool dry_run, queue, quiet;

	struct reindex *rx;       /* the pages, and the writing of them */
	struct redis *redis;
	struct lease *lease;      /* direct mode */
	struct stream *stream;    /* --queue */
	struct progress *prog;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Exit status for a failed step: 2 for the configuration, else 1. */
static int exit_code(enum status st)
{
	return st == STATUS_CONFIG ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
}

/* The hooks of the run (reindex.h). */
static void say(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, PROG ": %s\n", msg);
}

static void on_progress(void *arg, uint64_t done, uint64_t failed)
{
	struct run *r = arg;
	if (r->prog)
		progress_add(r->prog, done, failed);
}

static bool stop_requested(void *arg)
{
	(void)arg;
	return interrupted;
}

/* The progress line covers the pages selected: it ends when a rebuild has
 * built them. */
static void on_built(void *arg)
{
	struct run *r = arg;
	progress_finish(r->prog);
	r->prog = NULL;
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
					reindex_add_listed(r->rx, &part.v[i]);
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
				reindex_counts(r->rx)->failed++;
				continue;
			}
			reindex_add_listed(r->rx, x);
		}
	}
	pagelist_entries_free(&e);
	for (size_t k = 0; k < sel->n_embedded && st == STATUS_OK; k++) {
		struct pagelist_entries part = { 0 };
		st = pagelist_embeddedin(pl, sel->embedded[k], &part);
		if (st == STATUS_OK && part.n == 0)
			fprintf(stderr, PROG ": no page transcludes '%s'\n", sel->embedded[k]);
		for (size_t i = 0; i < part.n; i++)
			reindex_add_listed(r->rx, &part.v[i]);
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
		/* Redirect pages are no documents: their titles come with
		 * their targets' fetches. */
		st = pagelist_allpages(pl, nss[k], false, &part);
		for (size_t i = 0; i < part.n; i++)
			reindex_add_listed(r->rx, &part.v[i]);
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
	struct reindex_counts *counts = reindex_counts(r->rx);
	for (size_t i = 0; i < reindex_n_pages(r->rx) && !interrupted; i++) {
		struct reindex_page *p = reindex_page(r->rx, i);
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
			counts->indexed++;
			p->outcome = REINDEX_PRESENT;
			log_debug("action=queued wiki=%s page=%" PRId64 " id=%s", r->w->id,
				  p->page_id, id);
		} else {
			fprintf(stderr, PROG ": queueing page %" PRId64 ": %s\n", p->page_id,
				stream_errmsg(r->stream));
			counts->failed++;
			p->outcome = REINDEX_FAILED;
		}
		free(json);
		free(title);
		if (r->prog)
			progress_add(r->prog, 1, st == STATUS_OK ? 0 : 1);
	}
	return counts->failed || interrupted ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

/* ------------------------------------------------------- direct, dry run */

/* Prints a document for --dry-run: its dump, grouped by field. */
static void print_dry(const struct fetch_result *fr, struct shard_doc *d, unsigned shard)
{
	char *dump = shard_doc_dump(d);
	printf("==== page %" PRIu64 " rev %" PRIu64 " (%s) shard %u\n", fr->page_id,
	       fr->rev_id, fr->title ? fr->title : "", shard);
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
		 * hold spaces); the head (data, text, values) comes first. */
		bool is_term = strncmp(line, "data: ", 6) != 0 && strncmp(line, "text: ", 6) != 0 &&
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

/* The show hook of --dry-run: a document, or a page that would go. */
static void show(void *arg, const struct fetch_result *fr, struct shard_doc *d,
		 unsigned shard)
{
	(void)arg;
	if (d)
		print_dry(fr, d, shard);
	else
		printf("==== page %" PRIu64 ": would be deleted from the index (%s)\n",
		       fr->page_id, fr->cls == FETCH_OK ? "namespace not indexed"
		       : fetch_class_str(fr->cls));
}

/* Opens the live generation for direct writes, with the leases of its
 * partitions.  Returns an exit code, or -1 to go on. */
static int open_live(struct run *r)
{
	enum status st = reindex_open_live(r->rx);
	if (st != STATUS_OK)
		return exit_code(st);
	r->redis = tool_redis(PROG, r->cfg, 0);
	r->lease = lease_new(r->redis, r->w->id, r->w->shards, NULL, r->cfg->lease_ms);
	if (!r->lease) {
		fprintf(stderr, PROG ": cannot manage the leases of %s\n", r->w->id);
		return TOOL_EXIT_FAIL;
	}
	reindex_set_lease(r->rx, r->lease);
	return -1;
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
	/* The index is not for other users, whatever the shell's umask. */
	shard_private_umask();
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
	/* Its commits feed the replicas like the worker's. */
	replica_keep_changesets(r.cfg);
	for (size_t i = 0; i < sel.n_namespaces; i++)
		if (!conf_wiki_indexes(r.w, sel.namespaces[i]))
			fprintf(stderr, PROG ": warning: namespace %d is not indexed for %s "
				"(see `namespaces` in its [wiki] section): its pages are "
				"removed from the index, not added\n", sel.namespaces[i], r.w->id);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct reindex_hooks hooks = {
		.say = say,
		.progress = on_progress,
		.show = r.dry_run ? show : NULL,
		.stop = stop_requested,
		.arg = &r,
	};
	r.rx = reindex_new(r.cfg, r.w, &hooks);
	struct reindex_counts *counts = reindex_counts(r.rx);

	int rc = -1;
	if (!r.queue) {
		enum status st = reindex_setup(r.rx);
		if (st != STATUS_OK) {
			rc = exit_code(st);
			goto out;
		}
	}
	if (!select_pages(&r, &sel)) {
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	if (!r.quiet && !r.dry_run)
		r.prog = progress_new(stderr, r.queue ? "pages queued" : "pages",
				      reindex_n_pages(r.rx), isatty(STDERR_FILENO), 5000);
	if (r.queue) {
		rc = run_queue(&r);
	} else if (rebuild) {
		r.redis = tool_redis(PROG, r.cfg, 0);
		enum status st = rebuild_run(r.rx, r.redis, on_built, &r);
		rc = st == STATUS_OK ? TOOL_EXIT_OK : exit_code(st);
	} else {
		if (r.dry_run)
			reindex_dry_run(r.rx);
		else if ((rc = open_live(&r)) >= 0)
			goto out;
		bool ok = reindex_process(r.rx, 0, reindex_n_pages(r.rx));
		if (!r.dry_run && reindex_commit(r.rx) != STATUS_OK)
			ok = false;
		reindex_close(r.rx);
		rc = ok && !counts->failed ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
	}
out:
	if (r.prog)
		progress_finish(r.prog);
	if (rc != TOOL_EXIT_USAGE)
		fprintf(stderr, PROG ": %s: %zu pages: %" PRIu64 " %s, %" PRIu64
			" unchanged, %" PRIu64 " deleted, %" PRIu64 " failed%s\n",
			r.w ? r.w->id : "-", reindex_n_pages(r.rx), counts->indexed,
			r.queue ? "queued" : r.dry_run ? "shown" : "indexed", counts->unchanged,
			counts->deleted, counts->failed, interrupted ? " (interrupted)" : "");
	reindex_free(r.rx);
	stream_free(r.stream);
	lease_free(r.lease);
	redis_free(r.redis);
	conf_free(r.cfg);
	free(sel.titles);
	free(sel.ids);
	free(sel.namespaces);
	free(sel.embedded);
	return rc < 0 ? TOOL_EXIT_FAIL : rc;
}
