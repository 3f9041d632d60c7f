/* SPDX-License-Identifier: MIT */
/*
 * stream.c: the change-event queue on Redis Streams (see stream.h): setup,
 * producing, and the consumer's side (read, ack, nack, retries, claims,
 * dead letters of the entries it was handed).  The operator's side lives in
 * stream-ops.c; both share struct stream through stream-private.h.
 *
 * Invariants:
 *   - An entry is acked only through stream_ack*() (the caller says its
 *     effect is durable) or together with its dead letter in one MULTI/EXEC:
 *     nothing leaves the pending list without either being applied or being
 *     recorded as a dead letter.
 *   - Each partition keeps the set of entries handed out and not yet acked
 *     or nacked ("in flight").  Re-reading the pending list (after
 *     assignment, a reconnect or a nack) skips them, so an entry is never
 *     handed out twice while the caller still holds it, and so never acked
 *     twice.
 *   - Delivery counts come from Redis (XPENDING) whenever an entry is not new,
 *     so they survive restarts of the consumer and of Redis (AOF).
 *   - `rd` is touched only by the reader thread; `ctl`, the in-flight sets,
 *     the error message and the counters only under mu.
 */
#include "now.h"
#include "stream.h"

#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "stream-private.h"
#include "xmalloc.h"

/* A nacked entry waiting for its backoff to pass. */
struct retry {
	char id[STREAM_ID_MAX];
	int64_t due;                 /* ms, monotonic */
};

struct part {
	bool owned;
	bool reread;                 /* read own pending list before new entries */
	char cursor[STREAM_ID_MAX];  /* where the pending re-read continues */
	int64_t reread_at;           /* not before (ms, monotonic) */
	char claim_cursor[STREAM_ID_MAX];
	int64_t next_claim;          /* ms, monotonic */
	struct sid *inflight;        /* handed out, not acked nor nacked */
	size_t ninflight, capinflight, hint;
	struct retry *retries;       /* nacked, to be handed out again */
	size_t nretries, capretries;
};

/* One entry as read from Redis, before decoding. */
struct raw {
	int p;
	char id[STREAM_ID_MAX];
	struct sid sid;
	const char *payload; /* points into the reply; NULL when the entry is gone */
	size_t len;
	bool no_field;       /* entry exists but has no `event` field */
	long deliveries;
	long failures;       /* failed attempts recorded by stream_nack() */
};

static bool wiki_ok(const char *w)
{
	if (!w || !*w || strlen(w) > 64)
		return false;
	for (const char *p = w; *p; p++)
		if (*p == '{' || *p == '}' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

struct stream *stream_new(struct redis *rd, struct redis *ctl, const struct stream_opts *o,
                          char *err, size_t errlen)
{
	if (!ctl || !o || !wiki_ok(o->wiki) || o->partitions < 1 ||
	    o->partitions > STREAM_MAX_PARTITIONS) {
		if (err && errlen)
			snprintf(err, errlen, "stream: %s", !ctl ? "no control connection"
			         : (!o || !wiki_ok(o->wiki)) ? "invalid wiki id"
			         : "partitions must be 1..65536");
		return NULL;
	}
	struct stream *s = xcalloc(1, sizeof *s);
	s->rd = rd;
	s->ctl = ctl;
	s->wiki = xstrdup(o->wiki);
	s->partitions = o->partitions;
	if (o->consumer && *o->consumer) {
		s->consumer = xstrdup(o->consumer);
	} else {
		char host[128] = "host";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		struct backoff b;
		backoff_init(&b, 1, 0xffffff);
		b.attempt = 63;
		s->consumer = xasprintf("%s-%ld-%06x", host, (long)getpid(), backoff_next(&b));
	}
	s->batch = o->batch > 0 ? o->batch : 100;
	s->block_ms = o->block_ms > 0 ? o->block_ms : 1000;
	s->max_deliveries = o->max_deliveries > 0 ? o->max_deliveries : 5;
	s->max_interrupted = o->max_interrupted > 0 ? o->max_interrupted : 20;
	s->max_event_bytes = o->max_event_bytes > 0 ? o->max_event_bytes : 65536;
	s->claim_idle_ms = o->claim_idle_ms > 0 ? o->claim_idle_ms : 60000;
	backoff_init(&s->nack_backoff, o->retry_base_ms > 0 ? (unsigned)o->retry_base_ms : 100,
	             o->retry_cap_ms > 0 ? (unsigned)o->retry_cap_ms : 30000);
	s->parts = xcalloc((size_t)s->partitions, sizeof *s->parts);
	pthread_mutex_init(&s->mu, NULL);
	s->errmsg[0] = '\0';
	return s;
}

void stream_free(struct stream *s)
{
	if (!s)
		return;
	for (int p = 0; p < s->partitions; p++) {
		free(s->parts[p].inflight);
		free(s->parts[p].retries);
	}
	free(s->parts);
	pthread_mutex_destroy(&s->mu);
	free(s->wiki);
	free(s->consumer);
	free(s);
}

void stream_key(const struct stream *s, int p, char *buf, size_t len)
{
	snprintf(buf, len, "freshet:{%s:p%d}", s->wiki, p);
}

/* The failure counter of entry id of partition p.  One string key per entry
 * (in the partition's hash slot) rather than one hash, so that it can expire
 * on its own: a counter whose DEL was lost with a connection must not stay
 * forever. */
static void failed_key(const struct stream *s, int p, const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "freshet:{%s:p%d}:failed:%s", s->wiki, p, id);
}

/* How long a failure counter outlives its last failure.  Retries back off
 * for at most retry_cap_ms, so an entry is done failing long before. */
#define FAILED_TTL_S 86400

int stream_partition_of(const struct stream *s, int64_t page_id)
{
	int64_t m = page_id % s->partitions;
	return (int)(m < 0 ? m + s->partitions : m);
}

int stream_id_cmp(const char *a, const char *b)
{
	struct sid x = { 0, 0 }, y = { 0, 0 };
	if (!parse_sid(a, &x))
		x.ms = x.seq = 0;
	if (!parse_sid(b, &y))
		y.ms = y.seq = 0;
	return sid_cmp(x, y);
}

const char *stream_consumer(const struct stream *s)
{
	return s->consumer;
}

int stream_partitions(const struct stream *s)
{
	return s->partitions;
}

const char *stream_errmsg(const struct stream *s)
{
	return s->errmsg;
}

void stream_get_stats(struct stream *s, struct stream_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	pthread_mutex_unlock(&s->mu);
}

/* SETNX the partition count, or check it against the stored one.  Under mu. */
static enum status check_partitions(struct stream *s)
{
	if (s->partitions_checked)
		return STATUS_OK;
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "SET freshet:{%s}:partitions %d NX GET",
	                                s->wiki, s->partitions);
	if (!rep)
		return redis_fail(s, s->ctl, st, "publishing the partition count");
	long long stored = 0;
	if (rep->type == REDIS_REPLY_STRING &&
	    (!parse_count(rep->str, STREAM_MAX_PARTITIONS, &stored) ||
	     stored != s->partitions)) {
		seterr(s, "wiki %s: Redis key freshet:{%s}:partitions says %s partitions but "
		       "this process is configured with %d; refusing to misroute events "
		       "(fix the configuration, or rebuild and reset the key)",
		       s->wiki, s->wiki, rep->str, s->partitions);
		freeReplyObject(rep);
		return STATUS_CONFIG;
	}
	freeReplyObject(rep);
	s->partitions_checked = true;
	return STATUS_OK;
}

/* Creates the group on every partition (BUSYGROUP is fine).  Under mu. */
static enum status create_groups(struct stream *s)
{
	char key[256];
	enum status st = STATUS_OK;
	for (int p = 0; p < s->partitions; p++) {
		stream_key(s, p, key, sizeof key);
		if ((st = redis_append(s->ctl, "XGROUP CREATE %s %s 0 MKSTREAM", key,
		                       STREAM_GROUP)) != STATUS_OK)
			return redis_fail(s, s->ctl, st, "creating consumer groups");
	}
	enum status first = STATUS_OK;
	for (int p = 0; p < s->partitions; p++) {
		redisReply *rep = redis_get_reply(s->ctl, &st);
		if (rep) {
			freeReplyObject(rep);
		} else if (st == STATUS_INVALID && strstr(redis_errmsg(s->ctl), "BUSYGROUP")) {
			continue;
		} else if (first == STATUS_OK) {
			first = redis_fail(s, s->ctl, st, "creating consumer groups");
			if (st == STATUS_TRANSIENT)
				return first;
		}
	}
	return first;
}

enum status stream_setup(struct stream *s)
{
	pthread_mutex_lock(&s->mu);
	enum status st = check_partitions(s);
	if (st == STATUS_OK)
		st = create_groups(s);
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_produce(struct stream *s, int64_t page_id, const char *json, size_t len,
                           char *id_out)
{
	if (page_id < 1) {
		seterr(s, "produce: page id %" PRId64 " out of range", page_id);
		return STATUS_INVALID;
	}
	char key[256];
	stream_key(s, stream_partition_of(s, page_id), key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st = check_partitions(s);
	if (st != STATUS_OK)
		goto out;
	redisReply *rep = redis_command(s->ctl, &st, "XADD %s * event %b", key, json, len);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XADD");
		goto out;
	}
	if (id_out && rep->type == REDIS_REPLY_STRING)
		snprintf(id_out, STREAM_ID_MAX, "%s", rep->str);
	freeReplyObject(rep);
out:
	pthread_mutex_unlock(&s->mu);
	return st;
}

void stream_assign(struct stream *s, int p, bool owned)
{
	if (p < 0 || p >= s->partitions)
		return;
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	if (owned && !pt->owned) {
		pt->reread = true;
		strcpy(pt->cursor, "0");
		pt->reread_at = 0;
		strcpy(pt->claim_cursor, "0-0");
		pt->next_claim = 0;
	}
	if (!owned)
		pt->ninflight = pt->hint = pt->nretries = 0;
	pt->owned = owned;
	pthread_mutex_unlock(&s->mu);
}

bool stream_assigned(const struct stream *s, int p)
{
	return p >= 0 && p < s->partitions && s->parts[p].owned;
}

/* In-flight bookkeeping (under mu). */
static bool inflight_has(const struct part *pt, struct sid id)
{
	for (size_t i = 0; i < pt->ninflight; i++)
		if (sid_cmp(pt->inflight[i], id) == 0)
			return true;
	return false;
}

/* Removes from raws[before..*n) the entries the caller still holds: they
 * are pending, but in flight, not lost.  Call with the stream's lock held. */
static void drop_inflight(const struct part *pt, struct raw *raws, size_t before,
                          size_t *n)
{
	size_t j = before;
	for (size_t i = before; i < *n; i++)
		if (!inflight_has(pt, raws[i].sid))
			raws[j++] = raws[i];
	*n = j;
}

static void inflight_add(struct part *pt, struct sid id)
{
	if (pt->ninflight == pt->capinflight) {
		pt->capinflight = pt->capinflight ? pt->capinflight * 2 : 64;
		pt->inflight = xrealloc(pt->inflight, pt->capinflight * sizeof *pt->inflight);
	}
	pt->inflight[pt->ninflight++] = id;
}

/* Marks id removed (ms = seq = UINT64_MAX); acks come mostly in delivery
 * order, so the search starts where the last one was found. */
static void inflight_mark(struct part *pt, struct sid id)
{
	size_t n = pt->ninflight;
	for (size_t k = 0; k < n; k++) {
		size_t i = (pt->hint + k) % n;
		if (sid_cmp(pt->inflight[i], id) == 0) {
			pt->inflight[i].ms = pt->inflight[i].seq = UINT64_MAX;
			pt->hint = i + 1 < n ? i + 1 : 0;
			return;
		}
	}
}

static void inflight_compact(struct part *pt)
{
	size_t j = 0;
	for (size_t i = 0; i < pt->ninflight; i++)
		if (pt->inflight[i].ms != UINT64_MAX || pt->inflight[i].seq != UINT64_MAX)
			pt->inflight[j++] = pt->inflight[i];
	pt->ninflight = j;
	pt->hint = 0;
}

static void iso_now(char *buf, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* XADD to dead + XACK in one MULTI/EXEC on ctl.  Under mu. */
static enum status dead_letter_locked(struct stream *s, int p, const char *id,
                                      const char *payload, size_t len, long deliveries,
                                      const char *reason)
{
	char key[256], dkey[256], when[64], dstr[32];
	stream_key(s, p, key, sizeof key);
	dead_key(s, dkey, sizeof dkey);
	iso_now(when, sizeof when);
	snprintf(dstr, sizeof dstr, "%ld", deliveries);
	const char *argv[] = { "XADD", dkey, "*", "payload", payload ? payload : "", "reason",
	                       reason, "stream", key, "id", id, "deliveries", dstr, "time",
	                       when };
	size_t argvlen[15];
	for (int i = 0; i < 15; i++)
		argvlen[i] = strlen(argv[i]);
	argvlen[4] = payload ? len : 0;
	char fkey[STREAM_ID_MAX + 300];
	failed_key(s, p, id, fkey, sizeof fkey);
	enum status st;
	if ((st = redis_append(s->ctl, "MULTI")) != STATUS_OK ||
	    (st = redis_appendv(s->ctl, 15, argv, argvlen)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "XACK %s %s %s", key, STREAM_GROUP, id)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "DEL %s", fkey)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "EXEC")) != STATUS_OK)
		return redis_fail(s, s->ctl, st, "dead letter");
	enum status first = STATUS_OK;
	redisReply *exec = NULL;
	for (int i = 0; i < 5; i++) {
		redisReply *rep = redis_get_reply(s->ctl, &st);
		if (!rep) {
			if (first == STATUS_OK)
				first = redis_fail(s, s->ctl, st, "dead letter");
			if (st == STATUS_TRANSIENT)
				return first;
			continue;
		}
		if (i == 4)
			exec = rep;
		else
			freeReplyObject(rep);
	}
	if (first != STATUS_OK) {
		if (exec)
			freeReplyObject(exec);
		return first;
	}
	if (!exec || exec->type != REDIS_REPLY_ARRAY || exec->elements != 3) {
		seterr(s, "dead letter: transaction failed");
		if (exec)
			freeReplyObject(exec);
		return STATUS_TRANSIENT;
	}
	if (exec->element[1]->type == REDIS_REPLY_INTEGER)
		s->stats.acked += (uint64_t)exec->element[1]->integer;
	freeReplyObject(exec);
	s->stats.dead++;
	return STATUS_OK;
}

enum status stream_dead_letter(struct stream *s, int p, const char *id, const char *payload,
                               size_t len, long deliveries, const char *reason)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	pthread_mutex_lock(&s->mu);
	enum status st = dead_letter_locked(s, p, id, payload, len, deliveries, reason);
	struct sid sid;
	if (st == STATUS_OK && parse_sid(id, &sid)) {
		inflight_mark(&s->parts[p], sid);
		inflight_compact(&s->parts[p]);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* Appends the entries of one stream's entry array to *raws. */
static void collect(struct stream *s, int p, const redisReply *entries, struct raw **raws,
                    size_t *n, size_t *cap)
{
	(void)s;
	for (size_t i = 0; i < entries->elements; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			*raws = xrealloc(*raws, *cap * sizeof **raws);
		}
		struct raw *r = &(*raws)[(*n)++];
		memset(r, 0, sizeof *r);
		r->p = p;
		snprintf(r->id, sizeof r->id, "%s", e->element[0]->str);
		parse_sid(r->id, &r->sid);
		r->deliveries = 1;
		if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
			continue; /* deleted since it was delivered */
		const redisReply *f = e->element[1];
		r->no_field = true;
		for (size_t k = 0; k + 1 < f->elements; k += 2) {
			if (f->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(f->element[k]->str, "event") == 0 &&
			    f->element[k + 1]->type == REDIS_REPLY_STRING) {
				r->payload = f->element[k + 1]->str;
				r->len = f->element[k + 1]->len;
				r->no_field = false;
				break;
			}
		}
		if (r->no_field) {
			r->payload = "";
			r->len = 0;
		}
	}
}

/* Fills in the recorded failures of the entries of raws[from..n) that were
 * delivered before (one MGET; a first delivery cannot have failed). */
static enum status fetch_failures(struct stream *s, int p, struct raw *raws, size_t from,
                                  size_t n)
{
	size_t k = 0;
	for (size_t i = from; i < n; i++)
		k += raws[i].deliveries > 1;
	if (k == 0)
		return STATUS_OK;
	const char **argv = xmalloc((k + 1) * sizeof *argv);
	char (*keys)[STREAM_ID_MAX + 300] = xmalloc(k * sizeof *keys);
	size_t *at = xmalloc(k * sizeof *at);
	int argc = 0;
	argv[argc++] = "MGET";
	for (size_t i = from, j = 0; i < n; i++)
		if (raws[i].deliveries > 1) {
			failed_key(s, p, raws[i].id, keys[j], sizeof keys[j]);
			argv[argc++] = keys[j];
			at[j++] = i;
		}
	enum status st;
	redisReply *rep = redis_commandv(s->rd, &st, argc, argv, NULL);
	free(argv);
	free(keys);
	if (!rep) {
		free(at);
		return redis_fail(s, s->rd, st, "MGET (failures)");
	}
	for (size_t j = 0; rep->type == REDIS_REPLY_ARRAY && j < rep->elements && j < k; j++)
		if (rep->element[j]->type == REDIS_REPLY_STRING)
		{
			/* A counter that is not one counts as no failure. */
			long long v = 0;
			if (parse_count(rep->element[j]->str, LONG_MAX, &v))
				raws[at[j]].failures = (long)v;
		}
	freeReplyObject(rep);
	free(at);
	return STATUS_OK;
}

/* Fills in delivery counts of raws[from..n) of partition p from XPENDING
 * (one range query for this consumer), and their recorded failures. */
static enum status fetch_counts(struct stream *s, int p, struct raw *raws, size_t from,
                                size_t n)
{
	if (from == n)
		return STATUS_OK;
	/* The range may also hold entries in flight with the caller. */
	pthread_mutex_lock(&s->mu);
	size_t want = n - from + s->parts[p].ninflight + s->parts[p].nretries;
	pthread_mutex_unlock(&s->mu);
	char key[256];
	stream_key(s, p, key, sizeof key);
	enum status st;
	redisReply *rep = redis_command(s->rd, &st, "XPENDING %s %s %s %s %lu %s", key,
	                                STREAM_GROUP, raws[from].id, raws[n - 1].id,
	                                (unsigned long)want, s->consumer);
	if (!rep)
		return redis_fail(s, s->rd, st, "XPENDING");
	size_t j = from;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 4)
			continue;
		struct sid id;
		if (!parse_sid(e->element[0]->str, &id))
			continue;
		while (j < n && sid_cmp(raws[j].sid, id) < 0)
			j++;
		if (j < n && sid_cmp(raws[j].sid, id) == 0)
			raws[j].deliveries = (long)e->element[3]->integer;
	}
	freeReplyObject(rep);
	return fetch_failures(s, p, raws, from, n);
}

static bool reply_is_nogroup(struct redis *r)
{
	return strstr(redis_errmsg(r), "NOGROUP") != NULL;
}

/* What stream_read() has gathered so far: the entries, and the replies their
 * payloads point into (freed once the batch is built). */
struct reading {
	struct raw *raws;
	size_t n, cap;
	redisReply **hold;
	size_t nhold, caphold;
};

static void hold_reply(struct reading *r, redisReply *rep)
{
	if (r->nhold == r->caphold) {
		r->caphold = r->caphold ? r->caphold * 2 : 8;
		r->hold = xrealloc(r->hold, r->caphold * sizeof *r->hold);
	}
	r->hold[r->nhold++] = rep;
}

/* The stats counter a phase's entries add to.  STAT_NONE: new entries,
 * delivered for the first time, have no delivery count nor failure to look
 * up. */
enum phase_stat { STAT_NONE, STAT_REDELIVERED, STAT_CLAIMED };

/*
 * One read phase: the command that asks for a partition's entries and what
 * is done with its reply.  read_phase() runs a phase; stream_read() runs
 * them in the order of `phases` below until one gathers entries.
 */
struct phase {
	const char *what;       /* the command, for error messages */
	bool per_partition;     /* false: one command for every owned partition,
	                         * called with p == -1 */
	/* Sends the command for p on rd and returns its reply; or returns NULL,
	 * leaving *st at STATUS_OK when p has nothing to read in this phase, or
	 * with the failure in *st. */
	redisReply *(*ask)(struct stream *s, int p, int64_t now, enum status *st);
	/* Appends the entries of rep to r. */
	void (*collect)(struct stream *s, int p, const redisReply *rep, struct reading *r);
	/* NULL, or moves p's cursor past what rep returned (now the entries
	 * r->raws[before..r->n)) and drops the entries the caller still holds.
	 * Takes mu itself. */
	void (*advance)(struct stream *s, int p, const redisReply *rep, struct reading *r,
	                size_t before, int64_t now);
	enum phase_stat stat;
};

/*
 * Runs one phase: for each partition (or once, for a phase that reads them
 * all with one command) as long as nothing was gathered, sends the phase's
 * command, keeps the reply, collects its entries and lets the phase advance;
 * entries read again get their delivery counts and failures from Redis and
 * are counted in the stats.  Reader thread.
 */
static enum status read_phase(struct stream *s, const struct phase *ph, struct reading *r)
{
	int64_t now = now_ms();
	int rounds = ph->per_partition ? s->partitions : 1;
	for (int i = 0; i < rounds && r->n == 0; i++) {
		int p = ph->per_partition ? i : -1;
		enum status st = STATUS_OK;
		redisReply *rep = ph->ask(s, p, now, &st);
		if (!rep) {
			if (st != STATUS_OK)
				return redis_fail(s, s->rd, st, ph->what);
			continue;
		}
		hold_reply(r, rep);
		size_t before = r->n;
		ph->collect(s, p, rep, r);
		if (ph->advance)
			ph->advance(s, p, rep, r, before, now);
		if (ph->stat == STAT_NONE)
			continue;
		if ((st = fetch_counts(s, p, r->raws, before, r->n)) != STATUS_OK)
			return st;
		pthread_mutex_lock(&s->mu);
		if (ph->stat == STAT_CLAIMED)
			s->stats.claimed += r->n - before;
		else
			s->stats.redelivered += r->n - before;
		pthread_mutex_unlock(&s->mu);
	}
	return STATUS_OK;
}

/* Phase 1: this consumer's own pending entries of partitions marked for a
 * re-read. */
static redisReply *ask_pending(struct stream *s, int p, int64_t now, enum status *st)
{
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	bool want = pt->owned && pt->reread && pt->reread_at <= now;
	char cursor[STREAM_ID_MAX];
	memcpy(cursor, pt->cursor, sizeof cursor);
	pthread_mutex_unlock(&s->mu);
	if (!want)
		return NULL;
	char key[256];
	stream_key(s, p, key, sizeof key);
	return redis_command(s->rd, st, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s %s",
	                     STREAM_GROUP, s->consumer, s->batch, key, cursor);
}

static void collect_pending(struct stream *s, int p, const redisReply *rep, struct reading *r)
{
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	    rep->element[0]->elements == 2)
		collect(s, p, rep->element[0]->element[1], &r->raws, &r->n, &r->cap);
}

/* An empty answer ends the re-read of p. */
static void advance_pending(struct stream *s, int p, const redisReply *rep, struct reading *r,
                            size_t before, int64_t now)
{
	(void)rep;
	(void)now;
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	if (r->n == before) {
		pt->reread = false;
	} else {
		snprintf(pt->cursor, sizeof pt->cursor, "%s", r->raws[r->n - 1].id);
		drop_inflight(pt, r->raws, before, &r->n);
	}
	pthread_mutex_unlock(&s->mu);
}

/* Phase 1b: nacked entries whose backoff has passed, claimed again by this
 * consumer (XCLAIM without JUSTID raises the delivery count). */
static redisReply *ask_retries(struct stream *s, int p, int64_t now, enum status *st)
{
	char key[256];
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	int argc = 0;
	const char **argv = NULL;
	char (*ids)[STREAM_ID_MAX] = NULL;
	if (pt->owned && pt->nretries) {
		argv = xmalloc((pt->nretries + 6) * sizeof *argv);
		ids = xmalloc(pt->nretries * sizeof *ids);
		size_t j = 0, k = 0;
		for (size_t i = 0; i < pt->nretries; i++) {
			if (pt->retries[i].due <= now && (int)k < s->batch)
				memcpy(ids[k++], pt->retries[i].id, STREAM_ID_MAX);
			else
				pt->retries[j++] = pt->retries[i];
		}
		pt->nretries = j;
		if (k) {
			stream_key(s, p, key, sizeof key);
			argv[argc++] = "XCLAIM";
			argv[argc++] = key;
			argv[argc++] = STREAM_GROUP;
			argv[argc++] = s->consumer;
			argv[argc++] = "0";
			for (size_t i = 0; i < k; i++)
				argv[argc++] = ids[i];
		}
	}
	pthread_mutex_unlock(&s->mu);
	redisReply *rep = argc ? redis_commandv(s->rd, st, argc, argv, NULL) : NULL;
	free(argv);
	free(ids);
	return rep;
}

static void collect_retries(struct stream *s, int p, const redisReply *rep, struct reading *r)
{
	if (rep->type == REDIS_REPLY_ARRAY)
		collect(s, p, rep, &r->raws, &r->n, &r->cap);
}

/* After a full XAUTOCLAIM scan, consumers idle for claim_idle_ms hold
 * nothing: they are workers that died (each run has its own consumer
 * name).  Removes them so that XINFO CONSUMERS and freshetctl show the live
 * ones only; a live consumer removed by mistake is recreated by its next
 * XREADGROUP. */
static void forget_dead_consumers(struct stream *s, const char *key)
{
	/* Best effort: a failure here costs nothing but a longer list, and a
	 * broken connection shows in the next command. */
	enum status st;
	redisReply *rep = redis_command(s->rd, &st, "XINFO CONSUMERS %s %s", key, STREAM_GROUP);
	if (!rep)
		return;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *c = rep->element[i];
		const redisReply *name = field(c, "name"), *pending = field(c, "pending"),
		                 *idle = field(c, "idle");
		if (!name || name->type != REDIS_REPLY_STRING || !pending ||
		    pending->type != REDIS_REPLY_INTEGER || pending->integer != 0 || !idle ||
		    idle->type != REDIS_REPLY_INTEGER || idle->integer < s->claim_idle_ms ||
		    strcmp(name->str, s->consumer) == 0)
			continue;
		redisReply *d = redis_command(s->rd, &st, "XGROUP DELCONSUMER %s %s %s", key,
		                              STREAM_GROUP, name->str);
		if (!d)
			break;
		freeReplyObject(d);
	}
	freeReplyObject(rep);
}

/* Phase 2: entries other consumers left pending for claim_idle_ms. */
static redisReply *ask_claims(struct stream *s, int p, int64_t now, enum status *st)
{
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	bool want = pt->owned && !pt->reread && pt->next_claim <= now;
	char cursor[STREAM_ID_MAX];
	memcpy(cursor, pt->claim_cursor, sizeof cursor);
	pthread_mutex_unlock(&s->mu);
	if (!want)
		return NULL;
	char key[256];
	stream_key(s, p, key, sizeof key);
	/* Without JUSTID, XAUTOCLAIM raises the delivery count: a claim is a
	 * delivery, so a poison entry that kills its consumers reaches
	 * max_deliveries. */
	return redis_command(s->rd, st, "XAUTOCLAIM %s %s %s %d %s COUNT %d", key, STREAM_GROUP,
	                     s->consumer, s->claim_idle_ms, cursor, s->batch);
}

static void collect_claims(struct stream *s, int p, const redisReply *rep, struct reading *r)
{
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2)
		collect(s, p, rep->element[1], &r->raws, &r->n, &r->cap);
}

/* A full scan of p waits claim_idle_ms/4 before the next one, and clears
 * the dead consumers out of the group. */
static void advance_claims(struct stream *s, int p, const redisReply *rep, struct reading *r,
                           size_t before, int64_t now)
{
	pthread_mutex_lock(&s->mu);
	struct part *pt = &s->parts[p];
	const char *next = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	                   rep->element[0]->type == REDIS_REPLY_STRING
	                   ? rep->element[0]->str : "0-0";
	snprintf(pt->claim_cursor, sizeof pt->claim_cursor, "%s", next);
	bool scanned = strcmp(next, "0-0") == 0;
	if (scanned)
		pt->next_claim = now + s->claim_idle_ms / 4 + 1;
	drop_inflight(pt, r->raws, before, &r->n);
	pthread_mutex_unlock(&s->mu);
	if (scanned) {
		char key[256];
		stream_key(s, p, key, sizeof key);
		forget_dead_consumers(s, key);
	}
}

/* Phase 3: new entries of every owned partition, blocking.  With no
 * partition owned, sleeps block_ms instead. */
static redisReply *ask_new(struct stream *s, int p, int64_t now, enum status *st)
{
	(void)p;
	(void)now;
	int owned = 0;
	pthread_mutex_lock(&s->mu);
	for (int q = 0; q < s->partitions; q++)
		owned += s->parts[q].owned;
	pthread_mutex_unlock(&s->mu);
	if (owned == 0) {
		struct timespec ts = { s->block_ms / 1000, (long)(s->block_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		return NULL;
	}
	int argc = 0;
	const char **argv = xmalloc((size_t)(9 + 2 * owned) * sizeof *argv);
	char **keys = xcalloc((size_t)owned, sizeof *keys);
	char countbuf[16], blockbuf[16];
	snprintf(countbuf, sizeof countbuf, "%d", s->batch);
	snprintf(blockbuf, sizeof blockbuf, "%d", s->block_ms);
	argv[argc++] = "XREADGROUP";
	argv[argc++] = "GROUP";
	argv[argc++] = STREAM_GROUP;
	argv[argc++] = s->consumer;
	argv[argc++] = "COUNT";
	argv[argc++] = countbuf;
	argv[argc++] = "BLOCK";
	argv[argc++] = blockbuf;
	argv[argc++] = "STREAMS";
	int k = 0;
	for (int q = 0; q < s->partitions && k < owned; q++)
		if (s->parts[q].owned) {
			keys[k] = xasprintf("freshet:{%s:p%d}", s->wiki, q);
			argv[argc++] = keys[k++];
		}
	owned = k;
	for (int i = 0; i < owned; i++)
		argv[argc++] = ">";
	redisReply *rep = redis_commandv(s->rd, st, argc, argv, NULL);
	for (int i = 0; i < owned; i++)
		free(keys[i]);
	free(keys);
	free(argv);
	return rep;
}

/* The reply holds one [key, entries] pair per partition with new entries,
 * or is nil when BLOCK timed out. */
static void collect_new(struct stream *s, int p, const redisReply *rep, struct reading *r)
{
	(void)p;
	if (rep->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i < rep->elements; i++) {
		const redisReply *sr = rep->element[i];
		if (sr->type != REDIS_REPLY_ARRAY || sr->elements != 2)
			continue;
		int q = key_partition(s, sr->element[0]->str);
		if (q >= 0)
			collect(s, q, sr->element[1], &r->raws, &r->n, &r->cap);
	}
}

/* New entries are normally never in flight, but after the group was set
 * back (stream_replay()) the read of new entries hands out again what an
 * earlier phase may have handed out already: drop what the caller holds. */
static void advance_new(struct stream *s, int p, const redisReply *rep, struct reading *r,
                        size_t before, int64_t now)
{
	(void)p;
	(void)rep;
	(void)now;
	pthread_mutex_lock(&s->mu);
	size_t j = before;
	for (size_t i = before; i < r->n; i++)
		if (!inflight_has(&s->parts[r->raws[i].p], r->raws[i].sid))
			r->raws[j++] = r->raws[i];
	r->n = j;
	pthread_mutex_unlock(&s->mu);
}

static const struct phase phases[] = {
	{ .what = "XREADGROUP (pending)", .per_partition = true, .ask = ask_pending,
	  .collect = collect_pending, .advance = advance_pending, .stat = STAT_REDELIVERED },
	{ .what = "XCLAIM (retry)", .per_partition = true, .ask = ask_retries,
	  .collect = collect_retries, .stat = STAT_REDELIVERED },
	{ .what = "XAUTOCLAIM", .per_partition = true, .ask = ask_claims,
	  .collect = collect_claims, .advance = advance_claims, .stat = STAT_CLAIMED },
	{ .what = "XREADGROUP", .per_partition = false, .ask = ask_new,
	  .collect = collect_new, .advance = advance_new, .stat = STAT_NONE },
};

void stream_batch_free(struct stream_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		event_free(b->entries[i].event);
		free(b->entries[i].payload);
	}
	free(b->entries);
	free(b);
}

/* Acks an entry that has nothing left to process (deleted from the stream
 * while pending). */
static void ack_gone(struct stream *s, const struct raw *r)
{
	char key[256];
	stream_key(s, r->p, key, sizeof key);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XACK %s %s %s", key, STREAM_GROUP, r->id);
	if (rep) {
		if (rep->type == REDIS_REPLY_INTEGER)
			s->stats.acked += (uint64_t)rep->integer;
		freeReplyObject(rep);
	}
}

/* Deliveries of r that ended without stream_ack() or stream_nack(): every
 * delivery but the first is either a retry after a recorded failure or a
 * re-delivery of an entry whose consumer stopped holding it. */
static long interrupted(const struct raw *r)
{
	long n = r->deliveries - 1 - r->failures;
	return n > 0 ? n : 0;
}

enum status stream_read(struct stream *s, struct stream_batch **out)
{
	if (!s->rd) {
		seterr(s, "stream_read: no read connection");
		return STATUS_INVALID;
	}
	/* A new connection (first one, or after Redis went away) means this
	 * consumer must re-read its own pending entries first: what it read
	 * before may never have reached the caller. */
	if (!redis_context(s->rd)) {
		enum status st = redis_ensure(s->rd);
		if (st != STATUS_OK)
			return redis_fail(s, s->rd, st, "connect");
	}
	if (redis_generation(s->rd) != s->rd_generation) {
		pthread_mutex_lock(&s->mu);
		if (s->rd_generation != 0)
			s->stats.reconnects++;
		s->rd_generation = redis_generation(s->rd);
		for (int p = 0; p < s->partitions; p++)
			if (s->parts[p].owned) {
				s->parts[p].reread = true;
				strcpy(s->parts[p].cursor, "0");
			}
		pthread_mutex_unlock(&s->mu);
	}

	struct reading got = { 0 };
	enum status st = STATUS_OK;
	for (size_t i = 0; i < sizeof phases / sizeof *phases && st == STATUS_OK && got.n == 0; i++)
		st = read_phase(s, &phases[i], &got);
	if (st == STATUS_INVALID && reply_is_nogroup(s->rd)) {
		/* The stream or the group vanished (FLUSHALL, a new Redis):
		 * recreate and try again later. */
		pthread_mutex_lock(&s->mu);
		create_groups(s);
		pthread_mutex_unlock(&s->mu);
		st = STATUS_TRANSIENT;
	}

	struct stream_batch *b = NULL;
	if (st == STATUS_OK) {
		b = xcalloc(1, sizeof *b);
		b->entries = got.n ? xcalloc(got.n, sizeof *b->entries) : NULL;
		pthread_mutex_lock(&s->mu);
		for (size_t i = 0; i < got.n && st == STATUS_OK; i++) {
			struct raw *r = &got.raws[i];
			if (!r->payload) {
				ack_gone(s, r);
				continue;
			}
			struct event_error err;
			struct event *ev = NULL;
			char reason[512];
			reason[0] = '\0';
			if (r->no_field)
				snprintf(reason, sizeof reason, "entry has no `event` field");
			else if (r->len > s->max_event_bytes)
				snprintf(reason, sizeof reason,
				         "too large: %zu bytes, more than max_event_bytes (%zu)",
				         r->len, s->max_event_bytes);
			else if (interrupted(r) > s->max_interrupted)
				snprintf(reason, sizeof reason,
				         "delivered %ld times, %ld of them ended without a result "
				         "(consumer killed or crashed, lease or connection lost), "
				         "more than max_interrupted (%d): it may be crashing "
				         "the worker", r->deliveries, interrupted(r),
				         s->max_interrupted);
			else if (r->failures >= s->max_deliveries)
				snprintf(reason, sizeof reason,
				         "failed %ld times, max_deliveries (%d) reached",
				         r->failures, s->max_deliveries);
			else if (event_decode(r->payload, r->len, &ev, &err) != STATUS_OK)
				snprintf(reason, sizeof reason, "decode: %s", err.text);
			if (reason[0]) {
				st = dead_letter_locked(s, r->p, r->id, r->payload, r->len,
				                        r->deliveries, reason);
				continue;
			}
			struct stream_entry *e = &b->entries[b->n++];
			e->partition = r->p;
			memcpy(e->id, r->id, sizeof e->id);
			e->deliveries = r->deliveries;
			e->failures = r->failures;
			e->event = ev;
			e->payload = xstrndup(r->payload, r->len);
			e->len = r->len;
			inflight_add(&s->parts[r->p], r->sid);
			s->stats.delivered++;
		}
		pthread_mutex_unlock(&s->mu);
	}
	for (size_t i = 0; i < got.nhold; i++)
		freeReplyObject(got.hold[i]);
	free(got.hold);
	free(got.raws);
	if (st != STATUS_OK) {
		/* Entries already added to b are in flight; give them back so
		 * that the re-read after the reconnect hands them out. */
		if (b) {
			pthread_mutex_lock(&s->mu);
			for (size_t i = 0; i < b->n; i++) {
				struct sid id;
				parse_sid(b->entries[i].id, &id);
				inflight_mark(&s->parts[b->entries[i].partition], id);
			}
			for (int p = 0; p < s->partitions; p++) {
				inflight_compact(&s->parts[p]);
				if (s->parts[p].owned) {
					s->parts[p].reread = true;
					strcpy(s->parts[p].cursor, "0");
				}
			}
			pthread_mutex_unlock(&s->mu);
		}
		stream_batch_free(b);
		return st;
	}
	*out = b;
	return STATUS_OK;
}

enum status stream_ack_entries(struct stream *s, const struct stream_entry *const *e, size_t n)
{
	if (n == 0)
		return STATUS_OK;
	/* Group by partition: one XACK per partition, all pipelined. */
	int *count = xcalloc((size_t)s->partitions, sizeof *count);
	for (size_t i = 0; i < n; i++)
		count[e[i]->partition]++;
	pthread_mutex_lock(&s->mu);
	enum status st = STATUS_OK;
	int nxack = 0, ndel = 0;
	for (int p = 0; p < s->partitions && st == STATUS_OK; p++) {
		if (!count[p])
			continue;
		const char **argv = xmalloc((size_t)(3 + count[p]) * sizeof *argv);
		char key[256];
		stream_key(s, p, key, sizeof key);
		int argc = 0;
		argv[argc++] = "XACK";
		argv[argc++] = key;
		argv[argc++] = STREAM_GROUP;
		for (size_t i = 0; i < n; i++)
			if (e[i]->partition == p)
				argv[argc++] = e[i]->id;
		st = redis_appendv(s->ctl, argc, argv, NULL);
		free(argv);
		nxack++;
	}
	/* Entries that failed before leave their failure counters behind:
	 * delete them with the ack (they would expire anyway). */
	for (size_t i = 0; i < n && st == STATUS_OK; i++)
		if (e[i]->failures > 0) {
			char fkey[STREAM_ID_MAX + 300];
			failed_key(s, e[i]->partition, e[i]->id, fkey, sizeof fkey);
			st = redis_append(s->ctl, "DEL %s", fkey);
			ndel++;
		}
	if (st != STATUS_OK) {
		redis_disconnect(s->ctl); /* drop the half-queued pipeline */
		redis_fail(s, s->ctl, st, "XACK");
		goto out;
	}
	for (int i = 0; i < nxack + ndel; i++) {
		enum status rs;
		redisReply *rep = redis_get_reply(s->ctl, &rs);
		if (!rep) {
			if (st == STATUS_OK)
				st = redis_fail(s, s->ctl, rs, "XACK");
			if (rs == STATUS_TRANSIENT)
				break;
			continue;
		}
		if (i < nxack && rep->type == REDIS_REPLY_INTEGER)
			s->stats.acked += (uint64_t)rep->integer;
		freeReplyObject(rep);
	}
	if (st == STATUS_OK) {
		for (size_t i = 0; i < n; i++) {
			struct sid id;
			if (parse_sid(e[i]->id, &id))
				inflight_mark(&s->parts[e[i]->partition], id);
		}
		for (int p = 0; p < s->partitions; p++)
			if (count[p])
				inflight_compact(&s->parts[p]);
	}
out:
	pthread_mutex_unlock(&s->mu);
	free(count);
	return st;
}

enum status stream_ack(struct stream *s, const struct stream_batch *b)
{
	if (!b || b->n == 0)
		return STATUS_OK;
	const struct stream_entry **e = xmalloc(b->n * sizeof *e);
	for (size_t i = 0; i < b->n; i++)
		e[i] = &b->entries[i];
	enum status st = stream_ack_entries(s, e, b->n);
	free(e);
	return st;
}

/* Records one more failure of e (INCR + EXPIRE of its counter).  Under mu. */
static enum status count_failure(struct stream *s, const struct stream_entry *e)
{
	char fkey[STREAM_ID_MAX + 300];
	failed_key(s, e->partition, e->id, fkey, sizeof fkey);
	enum status st;
	if ((st = redis_append(s->ctl, "INCR %s", fkey)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "EXPIRE %s %d", fkey, FAILED_TTL_S)) != STATUS_OK) {
		redis_disconnect(s->ctl); /* drop the half-queued pipeline */
		return redis_fail(s, s->ctl, st, "INCR (failures)");
	}
	enum status first = STATUS_OK;
	for (int i = 0; i < 2; i++) {
		redisReply *rep = redis_get_reply(s->ctl, &st);
		if (!rep) {
			if (first == STATUS_OK)
				first = redis_fail(s, s->ctl, st, "INCR (failures)");
			if (st == STATUS_TRANSIENT)
				break;
			continue;
		}
		freeReplyObject(rep);
	}
	return first;
}

enum status stream_nack(struct stream *s, const struct stream_entry *e, const char *reason,
                        bool permanent, bool *dead)
{
	pthread_mutex_lock(&s->mu);
	enum status st;
	struct part *pt = &s->parts[e->partition];
	struct sid id;
	parse_sid(e->id, &id);
	bool to_dead = permanent || e->failures + 1 >= s->max_deliveries;
	if (to_dead) {
		char why[512];
		snprintf(why, sizeof why, "%s%s", reason ? reason : "failed",
		         permanent ? "" : " (max_deliveries reached)");
		st = dead_letter_locked(s, e->partition, e->id, e->payload, e->len, e->deliveries,
		                        why);
	} else if ((st = count_failure(s, e)) != STATUS_OK) {
		/* Not recorded: the caller retries the nack (the entry stays
		 * pending meanwhile). */
	} else {
		/* Keep it pending; ask_retries() claims it again after the
		 * backoff, which counts a delivery. */
		if (pt->nretries == pt->capretries) {
			pt->capretries = pt->capretries ? pt->capretries * 2 : 16;
			pt->retries = xrealloc(pt->retries, pt->capretries * sizeof *pt->retries);
		}
		struct retry *r = &pt->retries[pt->nretries++];
		memcpy(r->id, e->id, sizeof r->id);
		/* The backoff grows with the entry's own delivery count. */
		s->nack_backoff.attempt = e->deliveries > 1 ? (unsigned)(e->deliveries - 1) : 0;
		r->due = now_ms() + backoff_next(&s->nack_backoff);
		st = STATUS_OK;
	}
	if (st == STATUS_OK) {
		inflight_mark(pt, id);
		inflight_compact(pt);
		if (dead)
			*dead = to_dead;
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}
