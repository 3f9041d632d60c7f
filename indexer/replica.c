/* SPDX-License-Identifier: MIT */
/*
 * replica.c: the writer's changesets and published address, and the
 * xapian-replicate children of one wiki (see replica.h).
 *
 * Invariants: a partition has at most one child; a child's pid is
 * forgotten only after waitpid() returned it, so a pid this module signals
 * is always its own unreaped child (never a reused pid); the file
 * replica/shard-<N>.from holds the writer value the replica was last
 * pulled from, so a restarted worker knows whether the writer changed in
 * between and the next pull must be a full copy.
 */
#include "replica.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backoff.h"
#include "log.h"
#include "now.h"
#include "shard.h"
#include "xmalloc.h"

/* A client that ran at least this long before it exited starts again
 * after the shortest backoff: it was working, not failing at start. */
#define REPLICA_STEADY_MS 10000

struct child {
	pid_t pid;            /* 0 when not running */
	char *writer;         /* the writer value it pulls from */
	int64_t started_ms;
	int64_t next_start_ms;/* no start before this (backoff) */
	struct backoff bo;
};

struct replica {
	const struct conf *cfg;
	const struct conf_wiki *wiki;
	struct shard_set *set;  /* for the paths only */
	struct child *c;        /* [shards] */
};

void replica_keep_changesets(const struct conf *cfg)
{
	if (cfg->repl_changesets <= 0)
		return;
	char n[32];
	snprintf(n, sizeof n, "%d", cfg->repl_changesets);
	setenv("XAPIAN_MAX_CHANGESETS", n, 1);
}

char *replica_writer_value(const struct conf *cfg, const char *wiki, int partition)
{
	if (!*cfg->repl_advertise)
		return NULL;
	return xasprintf("%s %s/current/shard-%d", cfg->repl_advertise, wiki, partition);
}

enum status replica_publish(struct redis *r, const char *wiki, int partition,
			    const char *value, int ttl_ms)
{
	enum status st;
	char key[300];
	snprintf(key, sizeof key, "freshet:{%s:p%d}:writer", wiki, partition);
	redisReply *rep = redis_command(r, &st, "SET %s %s PX %d", key, value, ttl_ms);
	freeReplyObject(rep);
	return st;
}

enum status replica_writer_get(struct redis *r, const char *wiki, int partition,
			       char **value)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "GET freshet:{%s:p%d}:writer", wiki,
					partition);
	if (st == STATUS_OK)
		*value = rep->type == REDIS_REPLY_STRING ? xstrdup(rep->str) : NULL;
	freeReplyObject(rep);
	return st;
}

enum status replica_report(struct redis *r, const char *wiki, int partition,
			   const char *advertise, unsigned long long revision,
			   const char *position, int ttl_ms)
{
	enum status st;
	char key[300], val[200];
	snprintf(key, sizeof key, "freshet:{%s:p%d}:replicas", wiki, partition);
	snprintf(val, sizeof val, "%llu %s %lld", revision, *position ? position : "-",
		 (long long)now_s());
	redisReply *rep = redis_command(r, &st, "HSET %s %s %s", key, advertise, val);
	freeReplyObject(rep);
	if (st != STATUS_OK)
		return st;
	rep = redis_command(r, &st, "PEXPIRE %s %d", key, ttl_ms);
	freeReplyObject(rep);
	return st;
}

static int host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct replica_host *)a)->host,
		      ((const struct replica_host *)b)->host);
}

enum status replica_hosts_get(struct redis *r, const char *wiki, int partition,
			      struct replica_host **hosts, size_t *n)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "HGETALL freshet:{%s:p%d}:replicas", wiki,
					partition);
	if (st != STATUS_OK) {
		freeReplyObject(rep);
		return st;
	}
	struct replica_host *h = NULL;
	size_t k = 0;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2) {
		h = xcalloc(rep->elements / 2, sizeof *h);
		for (size_t i = 0; i + 1 < rep->elements; i += 2) {
			const redisReply *f = rep->element[i], *v = rep->element[i + 1];
			if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			struct replica_host *e = &h[k];
			snprintf(e->host, sizeof e->host, "%s", f->str);
			char pos[64] = "-";
			if (sscanf(v->str, "%llu %63s %lld", &e->revision, pos, &e->time) != 3)
				continue;
			snprintf(e->position, sizeof e->position, "%s", pos);
			k++;
		}
		qsort(h, k, sizeof *h, host_cmp);
	}
	freeReplyObject(rep);
	if (!k) {
		free(h);
		h = NULL;
	}
	*hosts = h;
	*n = k;
	return STATUS_OK;
}

struct replica *replica_new(const struct conf *cfg, const struct conf_wiki *wiki)
{
	struct replica *r = xcalloc(1, sizeof *r);
	r->cfg = cfg;
	r->wiki = wiki;
	r->set = shard_set_new(cfg->data_dir, wiki->id);
	r->c = xcalloc((size_t)wiki->shards, sizeof *r->c);
	for (int i = 0; i < wiki->shards; i++)
		backoff_init(&r->c[i].bo, 1000, 60000);
	return r;
}

/* The path of partition's ".from" file.  Caller frees. */
static char *from_path(const struct replica *r, int partition)
{
	char *dir = shard_set_replica_dir(r->set, (unsigned)partition);
	char *p = xasprintf("%s.from", dir);
	free(dir);
	return p;
}

/* True when the replica was last pulled from another writer than this
 * one (a full copy is then due), or never. */
static bool writer_changed(const struct replica *r, int partition, const char *writer)
{
	char *p = from_path(r, partition);
	FILE *f = fopen(p, "r");
	free(p);
	if (!f)
		return true;
	char line[600] = "";
	bool changed = !fgets(line, sizeof line, f) ||
		       (line[strcspn(line, "\n")] = '\0', strcmp(line, writer) != 0);
	fclose(f);
	return changed;
}

static void remember_writer(const struct replica *r, int partition, const char *writer)
{
	char *p = from_path(r, partition);
	char *tmp = xasprintf("%s.tmp", p);
	FILE *f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%s\n", writer);
		if (fclose(f) == 0 && rename(tmp, p) == 0) {
			free(tmp);
			free(p);
			return;
		}
	}
	log_warn("wiki=%s partition=%d action=replica_from reason=%s",
		 r->wiki->id, partition, log_quote(strerror(errno)));
	unlink(tmp);
	free(tmp);
	free(p);
}

/* Notes that c's process has exited with wait status ws. */
static void child_exited(struct replica *r, int partition, int ws, bool asked)
{
	struct child *c = &r->c[partition];
	int64_t ran = now_ms() - c->started_ms;
	if (!asked)
		log_warn("wiki=%s partition=%d action=replica_exit pid=%d status=%d "
			 "signal=%d ran_ms=%lld", r->wiki->id, partition, (int)c->pid,
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1,
			 WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, (long long)ran);
	c->pid = 0;
	if (ran >= REPLICA_STEADY_MS)
		backoff_reset(&c->bo);
	c->next_start_ms = asked ? 0 : now_ms() + backoff_next(&c->bo);
}

void replica_stop(struct replica *r, int partition)
{
	struct child *c = &r->c[partition];
	if (!c->pid)
		return;
	kill(c->pid, SIGTERM);
	int ws = 0;
	pid_t got;
	while ((got = waitpid(c->pid, &ws, 0)) < 0 && errno == EINTR)
		;
	log_info("wiki=%s partition=%d action=replica_stop pid=%d", r->wiki->id,
		 partition, (int)c->pid);
	child_exited(r, partition, ws, true);
	free(c->writer);
	c->writer = NULL;
}

bool replica_running(const struct replica *r, int partition)
{
	return r->c[partition].pid != 0;
}

/* Starts partition's client pulling from writer ("host:port path"). */
static void child_start(struct replica *r, int partition, const char *writer)
{
	struct child *c = &r->c[partition];
	const char *sp = strchr(writer, ' ');
	const char *colon = sp ? memrchr(writer, ':', (size_t)(sp - writer)) : NULL;
	if (!sp || !colon || colon == writer || !sp[1]) {
		log_warn("wiki=%s partition=%d action=replica_start reason=%s",
			 r->wiki->id, partition,
			 log_quote("published writer is not \"host:port path\""));
		c->next_start_ms = now_ms() + backoff_next(&c->bo);
		return;
	}
	char *host = xstrndup(writer, (size_t)(colon - writer));
	char *port = xstrndup(colon + 1, (size_t)(sp - colon - 1));
	char *dir = shard_set_replica_dir(r->set, (unsigned)partition);
	char *parent = shard_set_replica_dir(r->set, SHARD_SET_DIR);
	if (mkdir(parent, 0750) != 0 && errno != EEXIST)
		log_warn("wiki=%s action=replica_mkdir dir=%s reason=%s", r->wiki->id,
			 log_quote(parent), log_quote(strerror(errno)));
	bool force = writer_changed(r, partition, writer);
	char interval[16];
	snprintf(interval, sizeof interval, "%d", r->cfg->repl_interval_s);
	/* -r 0: apply each changeset at once; freshet's readers reopen on
	 * DatabaseModifiedError rather than hold the replica back. */
	char *argv[16];
	int n = 0;
	argv[n++] = "xapian-replicate";
	argv[n++] = "-q";
	argv[n++] = "-h";
	argv[n++] = host;
	argv[n++] = "-p";
	argv[n++] = port;
	argv[n++] = "-i";
	argv[n++] = interval;
	argv[n++] = "-r";
	argv[n++] = "0";
	argv[n++] = "-m";
	argv[n++] = (char *)sp + 1;
	if (force)
		argv[n++] = "-f";
	argv[n++] = dir;
	argv[n] = NULL;
	pid_t parent_pid = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* Only async-signal-safe calls between fork and exec.  The
		 * worker blocks its stop signals; the client must not. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent_pid)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0) {
		log_warn("wiki=%s partition=%d action=replica_start reason=%s",
			 r->wiki->id, partition, log_quote(strerror(errno)));
		c->next_start_ms = now_ms() + backoff_next(&c->bo);
	} else {
		c->pid = pid;
		c->started_ms = now_ms();
		free(c->writer);
		c->writer = xstrdup(writer);
		remember_writer(r, partition, writer);
		log_info("wiki=%s partition=%d action=replica_start pid=%d writer=%s "
			 "full_copy=%s", r->wiki->id, partition, (int)pid,
			 log_quote(writer), force ? "yes" : "no");
	}
	free(host);
	free(port);
	free(dir);
	free(parent);
}

void replica_follow(struct replica *r, int partition, const char *writer)
{
	struct child *c = &r->c[partition];
	int ws = 0;
	if (c->pid && waitpid(c->pid, &ws, WNOHANG) == c->pid)
		child_exited(r, partition, ws, false);
	/* This host's own shard (another worker of the host writes it) needs
	 * no copy. */
	const char *adv = r->cfg->repl_advertise;
	size_t al = strlen(adv);
	bool own = writer && al && strncmp(writer, adv, al) == 0 && writer[al] == ' ';
	if (!writer || own) {
		replica_stop(r, partition);
		return;
	}
	if (c->pid && strcmp(c->writer, writer) != 0) {
		log_info("wiki=%s partition=%d action=replica_follow was=%s writer=%s",
			 r->wiki->id, partition, log_quote(c->writer), log_quote(writer));
		replica_stop(r, partition);
	}
	if (!c->pid && now_ms() >= c->next_start_ms)
		child_start(r, partition, writer);
}

void replica_free(struct replica *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->wiki->shards; i++) {
		replica_stop(r, i);
		free(r->c[i].writer);
	}
	free(r->c);
	shard_set_free(r->set);
	free(r);
}
