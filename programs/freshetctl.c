/* SPDX-License-Identifier: MIT */
/*
 * freshetctl.c: freshetctl, the operator's view of queues and shards.
 *
 *   status                      partitions (lease owner, lag, pending, dead
 *                               letters, oldest entry against the shard's
 *                               position) and shards (documents, last
 *                               commit, size, fence) of every (or one) wiki
 *   dead list|show|replay|drop  the dead-letter stream of a wiki
 *   spool replay FILE           the MediaWiki extension's spool, XADDed
 *   check                       xapian-check on every shard
 *   compact                     xapian-compact every shard
 *   saneitize [--now]           the consistency loop: a new pass at the
 *                               workers' next step, or a whole pass now
 *
 * Compaction rule: a shard is compacted only while freshetctl itself holds
 * the partition's lease (taken like a worker takes it, renewed during the
 * run) and Xapian's write lock on the shard, so no worker can write it
 * meanwhile.  When a worker holds the partition, freshetctl takes it over
 * (lease_take_over(): it holds the wiki, and the workers hand their
 * partitions over) for that shard's compaction; a shard whose lease is not
 * handed over within lease_ms, or whose write lock is held elsewhere, is
 * skipped.  The compacted copy replaces the shard with
 * renameat2(RENAME_EXCHANGE), one atomic step, so a reader opening the
 * shard finds either the old or the compacted database, never nothing.
 *
 * Exit status: 0 success, 1 a failure or a finding (damaged shard, skipped
 * shard, unknown dead letter, bad spool line), 2 usage or configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "event.h"
#include "lease.h"
#include "now.h"
#include "redis.h"
#include "replica.h"
#include "saneitize.h"
#include "shard.h"
#include "stream-ops.h"
#include "stream.h"
#include "tool.h"
#include "xmalloc.h"

#define PROG "freshetctl"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--config FILE] [--wiki WIKI] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  status [--json]               partitions: lease owner, lag, pending, dead letters;\n"
		"                                shards: documents, last commit, size;\n"
		"                                replication: writer, replicas, their lag\n"
		"                                retention: oldest entry, shard position, margin\n"
		"  dead list [--limit K]         dead letters of the wiki\n"
		"  dead show ID                  one dead letter with its payload\n"
		"  dead replay ID...|--all       put dead letters back on their stream\n"
		"  dead drop ID...|--all         delete dead letters\n"
		"  spool replay FILE             add the events of an extension spool file\n"
		"  check                         xapian-check every shard of the live generation\n"
		"  compact                       xapian-compact every shard (workers pause)\n"
		"  saneitize [--now]             compare the wiki with its index and enqueue\n"
		"                                repairs: a new pass at the workers' next step,\n"
		"                                or with --now a whole pass at once, printing\n"
		"                                each repair (needs one wiki)\n"
		"\n"
		"  --config FILE  configuration (default: $FRESHET_CONFIG, else built-in defaults)\n"
		"  --wiki WIKI    one wiki (default: every configured wiki; dead needs one\n"
		"                 unless only one is configured)\n"
		"  --help         this text\n");
}

struct ctx {
	struct conf *cfg;
	const char *wiki;      /* --wiki or NULL */
	struct redis *redis;
};

/* Opens the stream handle of wiki w (ctl connection only). */
static struct stream *open_stream(struct ctx *c, const struct conf_wiki *w)
{
	struct stream_opts o = { .wiki = w->id, .partitions = w->shards };
	char err[256];
	struct stream *s = stream_new(NULL, c->redis, &o, err, sizeof err);
	if (!s) {
		fprintf(stderr, PROG ": %s: %s\n", w->id, err);
		exit(TOOL_EXIT_USAGE);
	}
	return s;
}

/* Runs argv (argv[0] found on PATH), with its stdout and stderr collected
 * into out (may be NULL to inherit).  Returns the exit status, or -1. */
static int run_cmd(char *const argv[], struct buf *out)
{
	int pfd[2] = { -1, -1 };
	if (out && pipe(pfd) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (out) {
			dup2(pfd[1], 1);
			dup2(pfd[1], 2);
			close(pfd[0]);
			close(pfd[1]);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (out) {
		close(pfd[1]);
		char b[4096];
		ssize_t n;
		while ((n = read(pfd[0], b, sizeof b)) > 0 || (n < 0 && errno == EINTR))
			if (n > 0)
				buf_add(out, b, (size_t)n);
		close(pfd[0]);
	}
	int wst;
	while (waitpid(pid, &wst, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
}

/* Formats unix seconds as ISO 8601 UTC ("-" for 0). */
static void fmt_time(char *b, size_t n, int64_t t)
{
	if (t <= 0) {
		snprintf(b, n, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------------- status */

/* The fix counts as JSON. */
static json_t *fixes_json(const uint64_t *fixes)
{
	json_t *o = json_object();
	for (int f = 0; f < SANEITIZE_FIX__COUNT; f++)
		json_object_set_new(o, saneitize_fix_str(f), json_integer((json_int_t)fixes[f]));
	return o;
}

/* The fix counts as text: "missing 0, stale 1, moved 0, ghost 2". */
static void fixes_text(const uint64_t *fixes, char *b, size_t n)
{
	size_t len = 0;
	b[0] = '\0';
	for (int f = 0; f < SANEITIZE_FIX__COUNT && len < n; f++)
		len += (size_t)snprintf(b + len, n - len, "%s%s %llu", f ? ", " : "",
					saneitize_fix_str(f), (unsigned long long)fixes[f]);
}

/* The consistency loop's line of wiki w: prints it, or returns it as JSON
 * (NULL when printed). */
static json_t *status_saneitize(struct ctx *c, const struct conf_wiki *w, bool json,
				int *rc)
{
	struct saneitize_state s;
	if (saneitize_load(c->redis, w->id, &s) != STATUS_OK) {
		fprintf(stderr, PROG ": %s: redis: %s\n", w->id, redis_errmsg(c->redis));
		*rc = TOOL_EXIT_FAIL;
		return json ? json_null() : NULL;
	}
	int64_t period = saneitize_period_ms(w);
	char fx[128], lfx[128], last[32];
	fixes_text(s.fixes, fx, sizeof fx);
	fixes_text(s.last_fixes, lfx, sizeof lfx);
	fmt_time(last, sizeof last, s.last_end_ms / 1000);
	json_t *o = NULL;
	if (json) {
		o = json_object();
		json_object_set_new(o, "period_s", json_real((double)period / 1000));
		json_object_set_new(o, "cycle", json_integer(s.cycle));
		json_object_set_new(o, "progress", json_real(saneitize_progress(&s)));
		json_object_set_new(o, "checked", json_integer((json_int_t)s.checked));
		json_object_set_new(o, "fixes", fixes_json(s.fixes));
		json_t *lp = json_null();
		if (s.last_cycle) {
			lp = json_object();
			json_object_set_new(lp, "cycle", json_integer(s.last_cycle));
			json_object_set_new(lp, "end", json_string(last));
			json_object_set_new(lp, "checked", json_integer((json_int_t)s.last_checked));
			json_object_set_new(lp, "fixes", fixes_json(s.last_fixes));
		}
		json_object_set_new(o, "last_pass", lp);
	} else {
		printf("  saneitize: %s", period ? "" : "off in the configuration; ");
		if (!s.cycle)
			printf("no pass yet\n");
		else
			printf("pass %lld %.0f%% (%llu checked; fixes: %s)\n", (long long)s.cycle,
			       saneitize_progress(&s), (unsigned long long)s.checked, fx);
		if (s.last_cycle)
			printf("  last full pass: %lld, ended %s (%llu checked; fixes: %s)\n",
			       (long long)s.last_cycle, last,
			       (unsigned long long)s.last_checked, lfx);
	}
	saneitize_state_free(&s);
	return o;
}

/* The replication rows of wiki w's status: per shard, the published
 * writer and every host's copy (replica.h), with its lag in revisions
 * behind the writer's copy.  NULL (and nothing printed) when this host's
 * configuration has no [replication]. */
static json_t *status_replication(struct ctx *c, const struct conf_wiki *w, bool json,
				  int *rc)
{
	if (!*c->cfg->repl_advertise && !conf_replicates(c->cfg, w->id))
		return NULL;
	json_t *jrep = json_array();
	if (!json)
		printf("  replication\n  %-6s %-24s %-8s %10s %-24s %6s %6s\n", "shard", "host",
		       "role", "revision", "position", "lag", "age_s");
	for (int p = 0; p < w->shards; p++) {
		char *writer = NULL;
		struct replica_host *h = NULL;
		size_t n = 0;
		if (replica_writer_get(c->redis, w->id, p, &writer) != STATUS_OK ||
		    replica_hosts_get(c->redis, w->id, p, &h, &n) != STATUS_OK) {
			fprintf(stderr, PROG ": %s partition %d: redis: %s\n", w->id, p,
				redis_errmsg(c->redis));
			*rc = TOOL_EXIT_FAIL;
			free(writer);
			continue;
		}
		/* The writer's host is its value up to the space. */
		size_t wl = writer ? strcspn(writer, " ") : 0;
		const struct replica_host *wh = NULL;
		for (size_t i = 0; i < n; i++)
			if (writer && strlen(h[i].host) == wl && strncmp(h[i].host, writer, wl) == 0)
				wh = &h[i];
		json_t *js = json_object();
		json_object_set_new(js, "shard", json_integer(p));
		json_object_set_new(js, "writer", writer ? json_string(writer) : json_null());
		json_t *jh = json_array();
		if (!json && !n)
			printf("  %-6d %-24s %-8s\n", p, writer ? writer : "-",
			       writer ? "writer" : "none");
		for (size_t i = 0; i < n; i++) {
			const char *role = &h[i] == wh ? "writer" : "replica";
			long long lag = wh ? (long long)wh->revision - (long long)h[i].revision : -1;
			long long age = (long long)now_s() - h[i].time;
			if (json) {
				json_t *e = json_object();
				json_object_set_new(e, "host", json_string(h[i].host));
				json_object_set_new(e, "role", json_string(role));
				json_object_set_new(e, "revision",
						    json_integer((json_int_t)h[i].revision));
				json_object_set_new(e, "position", strcmp(h[i].position, "-")
						    ? json_string(h[i].position) : json_null());
				json_object_set_new(e, "lag", lag >= 0 ? json_integer(lag)
						    : json_null());
				json_object_set_new(e, "age_s", json_integer(age));
				json_array_append_new(jh, e);
			} else {
				char lags[24] = "-";
				if (lag >= 0)
					snprintf(lags, sizeof lags, "%lld", lag);
				printf("  %-6d %-24s %-8s %10llu %-24s %6s %6lld\n", p, h[i].host,
				       role, h[i].revision, h[i].position, lags, age);
			}
		}
		json_object_set_new(js, "hosts", jh);
		json_array_append_new(jrep, js);
		free(h);
		free(writer);
	}
	return jrep;
}

/* The unix seconds of an entry id "<ms>-<seq>" (0 for none). */
static int64_t id_seconds(const char *id)
{
	return id && *id ? (int64_t)(strtoull(id, NULL, 10) / 1000) : 0;
}

/* Replay and retention of wiki w's partitions: how far back each stream
 * reaches (its oldest entry) against the position its shard stores.  The
 * margin is how far a copy of the shard may lag behind it and still be
 * brought up to date by replay; a negative margin means the shard itself
 * is behind what the stream holds (a gap).  Prints it, or adds it to the
 * partitions of jparts. */
static void status_retention(struct ctx *c, const struct conf_wiki *w, struct stream *s,
			     json_t *jparts, int *rc)
{
	struct shard_set *set = shard_set_new(c->cfg->data_dir, w->id);
	if (!jparts) {
		if (c->cfg->stream_retention_s)
			printf("  retention: %d s\n", c->cfg->stream_retention_s);
		else
			printf("  retention: off (streams are never trimmed)\n");
		printf("  %-10s %-22s %-22s %-22s %12s\n", "partition", "oldest entry",
		       "its time", "shard position", "margin");
	}
	for (int p = 0; p < w->shards; p++) {
		char key[256], oldest[STREAM_ID_MAX] = "";
		stream_key(s, p, key, sizeof key);
		enum status st = stream_oldest(s, p, oldest);
		if (st != STATUS_OK && st != STATUS_NOT_FOUND) {
			fprintf(stderr, PROG ": %s: %s\n", key, stream_errmsg(s));
			*rc = TOOL_EXIT_FAIL;
		}
		char *pos = NULL;
		st = shard_set_read_position(set, (unsigned)p, key, &pos);
		if (st != STATUS_OK && st != STATUS_NOT_FOUND) {
			fprintf(stderr, PROG ": %s shard %d: %s\n", w->id, p,
				shard_set_errmsg(set));
			*rc = TOOL_EXIT_FAIL;
		}
		bool known = oldest[0] && pos;
		int64_t margin = known ? id_seconds(pos) - id_seconds(oldest) : 0;
		char t[32];
		fmt_time(t, sizeof t, id_seconds(oldest));
		if (jparts) {
			json_t *jp = json_array_get(jparts, (size_t)p);
			json_object_set_new(jp, "oldest", oldest[0] ? json_string(oldest)
								: json_null());
			json_object_set_new(jp, "oldest_time", oldest[0] ? json_string(t)
								     : json_null());
			json_object_set_new(jp, "position", pos ? json_string(pos) : json_null());
			json_object_set_new(jp, "margin_s", known ? json_integer(margin)
								  : json_null());
		} else {
			char m[32] = "-";
			if (known)
				snprintf(m, sizeof m, "%lld s", (long long)margin);
			printf("  %-10d %-22s %-22s %-22s %12s\n", p, oldest[0] ? oldest : "-",
			       t, pos ? pos : "-", m);
		}
		free(pos);
	}
	shard_set_free(set);
}

static int cmd_status(struct ctx *c, bool json)
{
	int rc = TOOL_EXIT_OK;
	json_t *jroot = json_object();
	for (size_t i = 0; i < c->cfg->n_wikis; i++) {
		const struct conf_wiki *w = &c->cfg->wikis[i];
		if (c->wiki && strcmp(c->wiki, w->id) != 0)
			continue;
		json_t *jw = json_object(), *jparts = json_array(), *jshards = json_array();
		struct stream *s = open_stream(c, w);
		long long dead = -1;
		if (stream_dead_count(s, &dead) != STATUS_OK) {
			fprintf(stderr, PROG ": %s: redis: %s\n", w->id, stream_errmsg(s));
			rc = TOOL_EXIT_FAIL;
		}
		int published = 0;
		char perr[300];
		enum status pst = stream_partitions_get(c->redis, w->id, &published, perr,
							sizeof perr);
		if (pst == STATUS_INVALID) {
			fprintf(stderr, PROG ": %s: %s\n", w->id, perr);
			rc = TOOL_EXIT_FAIL;
		}
		if (!json) {
			printf("wiki %s: %d partitions", w->id, w->shards);
			if (pst == STATUS_OK && published != w->shards)
				printf(" (Redis says %d: fix the configuration!)", published);
			printf(", %lld dead letters\n", dead);
			printf("  %-10s %-40s %10s %10s\n", "partition", "owner", "lag", "pending");
		}
		for (int p = 0; p < w->shards; p++) {
			char key[256];
			stream_key(s, p, key, sizeof key);
			enum status st;
			redisReply *r = redis_command(c->redis, &st, "GET %s:lease", key);
			char *owner = xstrdup(r && r->type == REDIS_REPLY_STRING ? r->str : "-");
			if (r)
				freeReplyObject(r);
			long long lag = -1, pending = -1;
			/* A partition no event ever reached has no stream yet, and one
			 * no worker ever read has no group: both are simply idle. */
			r = redis_command(c->redis, &st, "XLEN %s", key);
			long long len = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
			if (r)
				freeReplyObject(r);
			if (len == 0) {
				lag = pending = 0;
			} else {
				st = stream_depth(s, p, &lag, &pending);
				if (st == STATUS_NOT_FOUND) {
					lag = len;
					pending = 0;
				} else if (st != STATUS_OK) {
					fprintf(stderr, PROG ": %s: %s\n", key, stream_errmsg(s));
					rc = TOOL_EXIT_FAIL;
				}
			}
			if (json) {
				json_t *jp = json_object();
				json_object_set_new(jp, "partition", json_integer(p));
				json_object_set_new(jp, "stream", json_string(key));
				json_object_set_new(jp, "owner", strcmp(owner, "-") ? json_string(owner)
						    : json_null());
				json_object_set_new(jp, "lag", json_integer(lag));
				json_object_set_new(jp, "pending", json_integer(pending));
				json_array_append_new(jparts, jp);
			} else {
				printf("  %-10d %-40s %10lld %10lld\n", p, owner, lag, pending);
			}
			free(owner);
		}
		status_retention(c, w, s, json ? jparts : NULL, &rc);
		stream_free(s);

		struct shard_set *set = shard_set_new(c->cfg->data_dir, w->id);
		char *gen = NULL;
		unsigned n = 0;
		if (shard_set_current(set, &gen) != STATUS_OK ||
		    shard_set_count(set, NULL, &n) != STATUS_OK) {
			if (!json)
				printf("  no index yet under %s/%s\n", c->cfg->data_dir, w->id);
		} else {
			if (!json)
				printf("  generation %s\n  %-6s %10s %8s %-22s %12s %8s\n", gen,
				       "shard", "documents", "dead", "last commit", "bytes",
				       "fence");
			for (unsigned k = 0; k < n; k++) {
				struct shard_stats ss;
				if (shard_set_stats(set, k, &ss) != STATUS_OK) {
					fprintf(stderr, PROG ": %s shard %u: %s\n", w->id, k,
						shard_set_errmsg(set));
					rc = TOOL_EXIT_FAIL;
					continue;
				}
				char t[32];
				fmt_time(t, sizeof t, ss.last_commit);
				if (json) {
					json_t *js = json_object();
					json_object_set_new(js, "shard", json_integer(k));
					json_object_set_new(js, "documents", json_integer((json_int_t)ss.docs));
					json_object_set_new(js, "dead", json_integer((json_int_t)ss.dead));
					json_object_set_new(js, "last_commit", ss.last_commit
							    ? json_string(t) : json_null());
					json_object_set_new(js, "bytes", json_integer((json_int_t)ss.bytes));
					json_object_set_new(js, "fence", json_integer((json_int_t)ss.fence));
					json_object_set_new(js, "revision",
							    json_integer((json_int_t)ss.revision));
					json_array_append_new(jshards, js);
				} else {
					printf("  %-6u %10llu %8llu %-22s %12llu %8llu\n", k,
					       (unsigned long long)ss.docs,
					       (unsigned long long)ss.dead, t,
					       (unsigned long long)ss.bytes,
					       (unsigned long long)ss.fence);
				}
			}
		}
		json_t *jrepl = status_replication(c, w, json, &rc);
		json_t *jsane = status_saneitize(c, w, json, &rc);
		if (json) {
			if (jrepl)
				json_object_set_new(jw, "replication", jrepl);
			json_object_set_new(jw, "saneitize", jsane);
			json_object_set_new(jw, "partitions", jparts);
			json_object_set_new(jw, "dead_letters", json_integer(dead));
			json_object_set_new(jw, "generation", gen ? json_string(gen) : json_null());
			json_object_set_new(jw, "shards", jshards);
			json_object_set_new(jroot, w->id, jw);
		} else {
			json_decref(jrepl);
			json_decref(jw);
			json_decref(jparts);
			json_decref(jshards);
		}
		free(gen);
		shard_set_free(set);
	}
	if (json) {
		char *s = json_dumps(jroot, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(s);
		free(s);
	}
	json_decref(jroot);
	return rc;
}

/* --------------------------------------------------------- dead letters */

/* A one-line summary of the page a payload names. */
/* s (len bytes; NUL-terminated when len is -1, NULL as "-") escaped for
 * the terminal (buf_add_escaped()).  The result lives in a ring of 8, so
 * up to 8 may appear in one printf(). */
static const char *tty(const char *s, ssize_t len)
{
	static char *ring[8];
	static unsigned next;
	if (!s)
		s = "-", len = -1;
	struct buf b = BUF_INIT;
	buf_add_escaped(&b, s, len < 0 ? strlen(s) : (size_t)len);
	char **slot = &ring[next++ & 7];
	free(*slot);
	*slot = buf_detach(&b, NULL);
	return *slot;
}

static void payload_page(const char *payload, size_t len, char *b, size_t n)
{
	struct event *ev = NULL;
	struct event_error err;
	if (event_decode(payload, len, &ev, &err) == STATUS_OK) {
		snprintf(b, n, "%s page=%lld title=%s", event_kind_str(ev->kind),
			 (long long)ev->page_id, ev->title);
		event_free(ev);
	} else {
		snprintf(b, n, "(undecodable: %s)", err.text);
	}
}

static int cmd_dead(struct ctx *c, int argc, char **argv)
{
	if (argc < 1) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	const struct conf_wiki *w = tool_wiki(PROG, c->cfg, c->wiki);
	struct stream *s = open_stream(c, w);
	int rc = TOOL_EXIT_OK;
	const char *sub = argv[0];
	if (strcmp(sub, "list") == 0) {
		long limit = 1000;
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
				limit = (long)tool_int(PROG, "--limit", argv[++i], 1, 1000000);
			else {
				usage(stderr);
				rc = TOOL_EXIT_USAGE;
				goto out;
			}
		}
		struct stream_dead *d = NULL;
		size_t n = 0;
		if (stream_dead_list(s, NULL, (size_t)limit, &d, &n) != STATUS_OK) {
			fprintf(stderr, PROG ": dead list: %s\n", stream_errmsg(s));
			rc = TOOL_EXIT_FAIL;
			goto out;
		}
		if (n == 0)
			printf("no dead letters for %s\n", w->id);
		for (size_t i = 0; i < n; i++) {
			char page[512];
			payload_page(d[i].payload, d[i].len, page, sizeof page);
			/* Every field may hold text from outside (a wiki's
			 * error message, a hand-made entry): escaped. */
			printf("%s time=%s deliveries=%ld stream=%s id=%s reason=%s %s\n",
			       tty(d[i].id, -1), tty(d[i].time, -1), d[i].deliveries,
			       tty(d[i].stream, -1), tty(d[i].source_id, -1),
			       tty(d[i].reason, -1), tty(page, -1));
		}
		stream_dead_free(d, n);
	} else if (strcmp(sub, "show") == 0) {
		if (argc != 2) {
			usage(stderr);
			rc = TOOL_EXIT_USAGE;
			goto out;
		}
		struct stream_dead *d = NULL;
		enum status st = stream_dead_show(s, argv[1], &d);
		if (st != STATUS_OK) {
			fprintf(stderr, PROG ": dead show %s: %s\n", argv[1],
				st == STATUS_NOT_FOUND ? "no such dead letter" : stream_errmsg(s));
			rc = TOOL_EXIT_FAIL;
			goto out;
		}
		printf("id:         %s\ntime:       %s\nreason:     %s\nstream:     %s\n"
		       "source id:  %s\ndeliveries: %ld\npayload:\n", tty(d->id, -1),
		       tty(d->time, -1), tty(d->reason, -1), tty(d->stream, -1),
		       tty(d->source_id, -1), d->deliveries);
		json_error_t jerr;
		json_t *j = json_loadb(d->payload, d->len, 0, &jerr);
		if (j) {
			char *pretty = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			/* jansson escapes C0 controls in strings but not DEL
			 * or C1 controls; its own newlines (indentation) are
			 * the only raw ones, so each line is escaped alone. */
			for (char *line = pretty, *nl; line; line = nl) {
				nl = strchr(line, '\n');
				puts(tty(line, nl ? nl - line : -1));
				if (nl)
					nl++;
			}
			free(pretty);
			json_decref(j);
		} else {
			/* Not JSON: shown escaped, never raw. */
			puts(tty(d->payload, (ssize_t)d->len));
		}
		stream_dead_free(d, 1);
	} else if (strcmp(sub, "replay") == 0 || strcmp(sub, "drop") == 0) {
		bool replay = sub[0] == 'r';
		bool all = argc == 2 && strcmp(argv[1], "--all") == 0;
		if (argc < 2) {
			usage(stderr);
			rc = TOOL_EXIT_USAGE;
			goto out;
		}
		/* Collect the ids first: with --all, every dead letter present now
		 * (not those added while we work). */
		size_t n = 0;
		char **ids = NULL;
		if (all) {
			struct stream_dead *d = NULL;
			char after[STREAM_ID_MAX] = "";
			for (;;) {
				size_t k = 0;
				if (stream_dead_list(s, after, 500, &d, &k) != STATUS_OK) {
					fprintf(stderr, PROG ": dead list: %s\n", stream_errmsg(s));
					rc = TOOL_EXIT_FAIL;
					break;
				}
				if (k == 0) {
					stream_dead_free(d, 0);
					break;
				}
				ids = xrealloc(ids, (n + k) * sizeof *ids);
				for (size_t i = 0; i < k; i++)
					ids[n++] = xstrdup(d[i].id);
				snprintf(after, sizeof after, "%s", d[k - 1].id);
				stream_dead_free(d, k);
			}
		} else {
			n = (size_t)argc - 1;
			ids = xcalloc(n, sizeof *ids);
			for (size_t i = 0; i < n; i++)
				ids[i] = xstrdup(argv[i + 1]);
		}
		size_t done = 0;
		for (size_t i = 0; i < n; i++) {
			enum status st = replay ? stream_dead_replay(s, ids[i])
					 : stream_dead_drop(s, ids[i]);
			if (st == STATUS_OK) {
				done++;
			} else {
				fprintf(stderr, PROG ": dead %s %s: %s\n", sub, ids[i],
					st == STATUS_NOT_FOUND ? "no such dead letter"
					: stream_errmsg(s));
				rc = TOOL_EXIT_FAIL;
			}
			free(ids[i]);
		}
		free(ids);
		printf("%s %zu dead letter%s\n", replay ? "replayed" : "dropped", done,
		       done == 1 ? "" : "s");
	} else {
		usage(stderr);
		rc = TOOL_EXIT_USAGE;
	}
out:
	stream_free(s);
	return rc;
}

/* --------------------------------------------------------------- spool */

/* Checks that key is the partition stream the event belongs to, given the
 * wiki's published (or configured) partition count. */
static bool spool_key_ok(struct ctx *c, const char *key, const struct event *ev,
			 char *why, size_t n)
{
	int parts = 0;
	enum status st = stream_partitions_get(c->redis, ev->wiki, &parts, why, n);
	if (st != STATUS_OK && st != STATUS_NOT_FOUND)
		return false; /* never a guess: the worker would refuse it */
	if (st == STATUS_NOT_FOUND) {
		const struct conf_wiki *w = conf_wiki(c->cfg, ev->wiki);
		if (!w) {
			snprintf(why, n, "wiki %s has no published partition count and is "
				 "not configured", ev->wiki);
			return false;
		}
		parts = w->shards;
		why[0] = '\0';
	}
	char want[300];
	snprintf(want, sizeof want, "freshet:{%s:p%lld}", ev->wiki,
		 (long long)(ev->page_id % parts));
	if (strcmp(want, key) != 0) {
		snprintf(why, n, "stream %s is not the event's partition %s", key, want);
		return false;
	}
	return true;
}

static int cmd_spool(struct ctx *c, int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[0], "replay") != 0) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		fprintf(stderr, PROG ": %s: %s\n", argv[1], strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	int rc = TOOL_EXIT_OK;
	char *line = NULL;
	size_t cap = 0, added = 0, bad = 0;
	ssize_t len;
	long lineno = 0;
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		json_error_t jerr;
		json_t *j = json_loadb(line, (size_t)len, 0, &jerr);
		const char *key = json_string_value(json_object_get(j, "stream"));
		json_t *jev = json_object_get(j, "event");
		char why[400] = "";
		char *evs = NULL;
		struct event *ev = NULL;
		struct event_error eerr;
		if (!j)
			snprintf(why, sizeof why, "not JSON: %s", jerr.text);
		else if (!key || !json_is_object(jev))
			snprintf(why, sizeof why, "wants {\"stream\": KEY, \"event\": {...}}");
		else {
			evs = json_dumps(jev, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (event_decode(evs, strlen(evs), &ev, &eerr) != STATUS_OK)
				snprintf(why, sizeof why, "event: %s", eerr.text);
			else
				spool_key_ok(c, key, ev, why, sizeof why);
		}
		if (!*why) {
			enum status st;
			redisReply *r = redis_command(c->redis, &st, "XADD %s * event %b", key,
						      evs, strlen(evs));
			if (r) {
				added++;
				freeReplyObject(r);
			} else {
				fprintf(stderr, PROG ": %s:%ld: XADD %s: %s\n", argv[1], lineno,
					key, redis_errmsg(c->redis));
				free(evs);
				event_free(ev);
				json_decref(j);
				rc = TOOL_EXIT_FAIL;
				/* Redis is away: stop, so that the order of the rest is kept
				 * for the next attempt. */
				break;
			}
		} else {
			fprintf(stderr, PROG ": %s:%ld: skipped: %s\n", argv[1], lineno, why);
			bad++;
			rc = TOOL_EXIT_FAIL;
		}
		free(evs);
		event_free(ev);
		json_decref(j);
	}
	free(line);
	fclose(f);
	printf("spool %s: %zu events added, %zu lines skipped\n", argv[1], added, bad);
	return rc;
}

/* --------------------------------------------------------- check, compact */

/* Calls fn for each shard of the live generation of each selected wiki. */
typedef int (*shard_fn)(struct ctx *c, const struct conf_wiki *w, unsigned n,
			const char *path);

static int each_shard(struct ctx *c, shard_fn fn)
{
	int rc = TOOL_EXIT_OK;
	for (size_t i = 0; i < c->cfg->n_wikis; i++) {
		const struct conf_wiki *w = &c->cfg->wikis[i];
		if (c->wiki && strcmp(c->wiki, w->id) != 0)
			continue;
		struct shard_set *set = shard_set_new(c->cfg->data_dir, w->id);
		char *gen = NULL;
		unsigned n = 0;
		if (shard_set_current(set, &gen) != STATUS_OK ||
		    shard_set_count(set, gen, &n) != STATUS_OK) {
			fprintf(stderr, PROG ": %s: no index under %s/%s\n", w->id,
				c->cfg->data_dir, w->id);
			rc = TOOL_EXIT_FAIL;
		}
		/* The resolved generation, not `current`: a swap during the run
		 * must not make us work on two generations. */
		for (unsigned k = 0; k < n; k++) {
			char *path = shard_set_path(set, gen, k);
			if (fn(c, w, k, path) != TOOL_EXIT_OK)
				rc = TOOL_EXIT_FAIL;
			free(path);
		}
		free(gen);
		shard_set_free(set);
	}
	return rc;
}

static int check_one(struct ctx *c, const struct conf_wiki *w, unsigned n,
		     const char *path)
{
	(void)c;
	struct buf out = BUF_INIT;
	char *argv[] = { "xapian-check", (char *)path, NULL };
	int st = run_cmd(argv, &out);
	int rc = st == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
	if (rc == TOOL_EXIT_OK) {
		printf("%s shard %u: ok\n", w->id, n);
	} else {
		/* The checker's last lines say what is wrong. */
		const char *tail = out.data;
		for (int lines = 0, i = (int)out.len - 2; i >= 0; i--)
			if (out.data[i] == '\n' && ++lines == 6) {
				tail = out.data + i + 1;
				break;
			}
		printf("%s shard %u: DAMAGED (xapian-check exit %d)\n%s", w->id, n, st, tail);
	}
	buf_release(&out);
	return rc;
}

static volatile sig_atomic_t stop_requested;

/* The same, for saneitize_pass(). */
static atomic_bool sane_stop;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	atomic_store(&sane_stop, true);
}

/* The take-over's wait (lease_take_over()): until a signal arrives. */
static bool keep_waiting(void *arg, const int *waiting, int n_waiting)
{
	(void)arg;
	(void)waiting;
	(void)n_waiting;
	return !stop_requested;
}

static int compact_one(struct ctx *c, const struct conf_wiki *w, unsigned n,
		       const char *path)
{
	char owner[128];
	char host[64] = "host";
	gethostname(host, sizeof host - 1);
	snprintf(owner, sizeof owner, "freshetctl-compact-%s-%d", host, (int)getpid());
	int lease_ms = c->cfg->lease_ms;
	struct lease *l = lease_new(c->redis, w->id, w->shards, owner, lease_ms);
	if (!l) {
		fprintf(stderr, PROG ": %s: cannot manage leases\n", w->id);
		return TOOL_EXIT_FAIL;
	}
	int rc = TOOL_EXIT_FAIL;
	struct shard *sh = NULL;
	char *tmp = xasprintf("%s.compact-%d", path, (int)getpid());
	/* When a worker writes the partition, the take-over holds the wiki, so
	 * that the workers hand their partitions over (lease.h), and waits for
	 * this one up to lease_ms: a worker hands over within a third of
	 * lease_ms, plus its last commit. */
	int p = (int)n;
	struct lease_takeover o = { .partitions = &p, .n_partitions = 1, .wait_ms = lease_ms,
				    .poll_ms = 100, .fn = keep_waiting };
	enum status st = lease_take_over(l, &o);
	if (st == STATUS_LOCKED && !lease_holding(l)) {
		printf("%s shard %u: skipped, %s\n", w->id, n, lease_errmsg(l));
		goto out;
	} else if (st == STATUS_LOCKED) {
		printf("%s shard %u: skipped, a worker holds partition %u and did not "
		       "hand it over within %d ms (stop it to compact)\n", w->id, n, n,
		       lease_ms);
		goto out;
	} else if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s shard %u: lease: %s\n", w->id, n, lease_errmsg(l));
		goto out;
	}
	uint64_t token = lease_token(l, p);
	/* Xapian's own write lock as well: a writer that ignores leases (a
	 * reindex-page in direct mode) also keeps us out. */
	sh = shard_new();
	st = shard_open(sh, path, 0);
	/* A worker that has just handed the partition over may still be
	 * closing its writer (it releases the lease first): wait a little. */
	for (int waited = 0; st == STATUS_LOCKED && waited < lease_ms && !stop_requested;
	     waited += 100) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		if (lease_keep(l) != STATUS_OK)
			break;
		st = shard_open(sh, path, 0);
	}
	if (st != STATUS_OK) {
		printf("%s shard %u: skipped: %s\n", w->id, n, shard_errmsg(sh));
		goto out;
	}
	/* Deleted pages wait in the shard as dead documents (shard.h): purge
	 * them first, so that the compacted copy holds none. */
	size_t purged = 0, batch = 0;
	do {
		st = shard_purge(sh, 1000, &batch);
		if (st == STATUS_OK)
			st = shard_commit(sh, token);
		purged += batch;
	} while (st == STATUS_OK && batch && !stop_requested && lease_keep(l) == STATUS_OK);
	if (st != STATUS_OK) {
		printf("%s shard %u: skipped: purging deleted pages: %s\n", w->id, n,
		       shard_errmsg(sh));
		goto out;
	}
	if (purged)
		printf("%s shard %u: purged %zu deleted pages\n", w->id, n, purged);
	char *rmv[] = { "rm", "-rf", tmp, NULL };
	run_cmd(rmv, NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 1);
		execlp("xapian-compact", "xapian-compact", "--no-renumber", path, tmp,
		       (char *)NULL);
		fprintf(stderr, "xapian-compact: %s\n", strerror(errno));
		_exit(127);
	}
	/* Renew the lease while the compaction runs. */
	int wst = 0;
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	struct timespec last, now;
	clock_gettime(CLOCK_MONOTONIC, &last);
	bool lost = false;
	for (;;) {
		pid_t r = waitpid(pid, &wst, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			break;
		nanosleep(&pause, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000 >=
		    lease_ms / 3) {
			if (lease_keep(l) != STATUS_OK)
				lost = true;
			last = now;
		}
		if (stop_requested || lost) {
			kill(pid, SIGTERM);
			waitpid(pid, &wst, 0);
			break;
		}
	}
	if (lost || stop_requested || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
		printf("%s shard %u: compaction %s; shard left as it was\n", w->id, n,
		       lost ? "abandoned, the lease was lost"
		       : stop_requested ? "interrupted" : "failed");
		run_cmd(rmv, NULL);
		goto out;
	}
	/* One atomic step: the compacted copy takes the shard's name. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) != 0) {
		fprintf(stderr, PROG ": %s shard %u: exchanging %s and %s: %s\n", w->id, n,
			tmp, path, strerror(errno));
		run_cmd(rmv, NULL);
		goto out;
	}
	/* Close our writer (on the old files, now at tmp) before removing them. */
	shard_free(sh);
	sh = NULL;
	run_cmd(rmv, NULL);
	printf("%s shard %u: compacted\n", w->id, n);
	rc = TOOL_EXIT_OK;
out:
	shard_free(sh);
	lease_hand_back(l);
	lease_free(l);
	free(tmp);
	return rc;
}

/* ---------------------------------------------------------------- main */

/* ------------------------------------------------------------ saneitize */

static void print_fix(void *arg, enum saneitize_fix kind, int64_t page_id, int ns,
		      const char *title)
{
	(void)arg;
	printf("%-8s page %lld (namespace %d) %s\n", saneitize_fix_str(kind),
	       (long long)page_id, ns, tty(title, -1));
	fflush(stdout);
}

static int cmd_saneitize(struct ctx *c, int argc, char **argv)
{
	bool now = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--now") == 0) {
			now = true;
		} else if (strcmp(argv[i], "--wiki") == 0 && i + 1 < argc) {
			c->wiki = argv[++i];
		} else {
			fprintf(stderr, PROG ": saneitize: unknown argument %s\n", argv[i]);
			return TOOL_EXIT_USAGE;
		}
	}
	const struct conf_wiki *w = tool_wiki(PROG, c->cfg, c->wiki);
	if (!now) {
		if (saneitize_reset(c->redis, w->id) != STATUS_OK) {
			fprintf(stderr, PROG ": %s: redis: %s\n", w->id, redis_errmsg(c->redis));
			return TOOL_EXIT_FAIL;
		}
		printf("%s: a new pass starts at the workers' next step\n", w->id);
		return TOOL_EXIT_OK;
	}
	struct saneitize *sz = saneitize_new(c->cfg, w, c->redis, NULL);
	saneitize_on_fix(sz, print_fix, NULL);
	enum status st = saneitize_pass(sz, c->cfg->lease_ms, &sane_stop);
	int rc = TOOL_EXIT_OK;
	if (st != STATUS_OK) {
		fprintf(stderr, PROG ": %s: saneitize: %s\n", w->id, saneitize_errmsg(sz));
		rc = st == STATUS_CONFIG ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	}
	saneitize_free(sz);
	struct saneitize_state s;
	if (rc == TOOL_EXIT_OK && saneitize_load(c->redis, w->id, &s) == STATUS_OK) {
		char fx[128];
		fixes_text(s.last_fixes, fx, sizeof fx);
		printf("%s: pass %lld checked %llu pages and documents; fixes: %s\n", w->id,
		       (long long)s.last_cycle, (unsigned long long)s.last_checked, fx);
		saneitize_state_free(&s);
	}
	return rc;
}

int main(int argc, char **argv)
{
	/* The index is not for other users, whatever the shell's umask. */
	shard_private_umask();
	const char *config = NULL;
	struct ctx c = { 0 };
	bool json = false;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "wiki", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	/* "+": stop at the command, so that its own arguments (--all, --limit)
	 * are left to it. */
	while ((o = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config = optarg; break;
		case 'w': c.wiki = optarg; break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default: usage(stderr); return TOOL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	int cargc = argc - optind - 1;
	char **cargv = argv + optind + 1;
	if (strcmp(cmd, "status") == 0 && cargc == 1 && strcmp(cargv[0], "--json") == 0) {
		json = true;
		cargc = 0;
	}
	if (!((strcmp(cmd, "status") == 0 && cargc == 0) || strcmp(cmd, "dead") == 0 ||
	      strcmp(cmd, "spool") == 0 || (strcmp(cmd, "check") == 0 && cargc == 0) ||
	      (strcmp(cmd, "compact") == 0 && cargc == 0) || strcmp(cmd, "saneitize") == 0)) {
		fprintf(stderr, PROG ": unknown command or arguments: %s\n", cmd);
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	c.cfg = tool_load_conf(PROG, config);
	if (c.wiki)
		tool_wiki(PROG, c.cfg, c.wiki);
	c.redis = tool_redis(PROG, c.cfg, 0);
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int rc;
	if (strcmp(cmd, "status") == 0)
		rc = cmd_status(&c, json);
	else if (strcmp(cmd, "dead") == 0)
		rc = cmd_dead(&c, cargc, cargv);
	else if (strcmp(cmd, "spool") == 0)
		rc = cmd_spool(&c, cargc, cargv);
	else if (strcmp(cmd, "check") == 0)
		rc = each_shard(&c, check_one);
	else if (strcmp(cmd, "saneitize") == 0)
		rc = cmd_saneitize(&c, cargc, cargv);
	else
		rc = each_shard(&c, compact_one);
	redis_free(c.redis);
	conf_free(c.cfg);
	return rc;
}
