/* SPDX-License-Identifier: MIT */
/*
 * stream-ops.c: the operator's side of the event queue (see stream-ops.h):
 * partition count, queue depth, trimming and the dead letters.
 *
 * It shares struct stream with stream.c (stream-private.h) but touches only
 * what the operator needs: the control connection, always with the mutex
 * held, the wiki and the error message.  Nothing here reads a partition's
 * consumer bookkeeping; a replayed dead letter is a new entry of its
 * partition.  Only stream_replay() changes what stream_read() hands out,
 * through Redis (the group's last-delivered id), which is why it is called
 * before the partition is assigned.
 */
#include "stream-ops.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream-private.h"
#include "xmalloc.h"

enum status stream_partitions_get(struct redis *r, const char *wiki, int *out,
                                  char *err, size_t errlen)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "GET freshet:{%s}:partitions", wiki);
	if (!rep) {
		if (err && errlen)
			snprintf(err, errlen, "redis: %s", redis_errmsg(r));
		return st;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		if (err && errlen)
			snprintf(err, errlen, "wiki %s has no published partition count", wiki);
		return STATUS_NOT_FOUND;
	}
	long long n = 0;
	if (!parse_count(rep->str, STREAM_MAX_PARTITIONS, &n) || n < 1) {
		/* Dividing by it would crash; guessing would misroute. */
		if (err && errlen)
			snprintf(err, errlen, "Redis key freshet:{%s}:partitions holds no "
			         "partition count (an integer from 1 to %d): set it to "
			         "the wiki's shards", wiki, STREAM_MAX_PARTITIONS);
		freeReplyObject(rep);
		return STATUS_INVALID;
	}
	*out = (int)n;
	freeReplyObject(rep);
	return STATUS_OK;
}

/* The group's XINFO GROUPS entry for key (caller frees *hold). */
static const redisReply *group_info(struct stream *s, const char *key, redisReply **hold,
                                    enum status *st)
{
	*hold = redis_command(s->ctl, st, "XINFO GROUPS %s", key);
	if (!*hold)
		return NULL;
	for (size_t i = 0; (*hold)->type == REDIS_REPLY_ARRAY && i < (*hold)->elements; i++) {
		const redisReply *name = field((*hold)->element[i], "name");
		if (name && name->type == REDIS_REPLY_STRING && strcmp(name->str, STREAM_GROUP) == 0)
			return (*hold)->element[i];
	}
	*st = STATUS_NOT_FOUND;
	return NULL;
}

/* Lowers *m to what every trim must keep: the group's last-delivered id
 * (later entries were never delivered) and the oldest pending entry
 * (delivered, not acked).  what names the caller in messages.  Under mu. */
static enum status delivered_bound(struct stream *s, const char *key, const char *what,
                                   struct sid *m)
{
	enum status st;
	redisReply *hold = NULL, *pend = NULL;
	const redisReply *g = group_info(s, key, &hold, &st);
	if (!g) {
		if (st == STATUS_NOT_FOUND)
			seterr(s, "%s %s: no consumer group %s", what, key, STREAM_GROUP);
		else
			redis_fail(s, s->ctl, st, "XINFO GROUPS");
		goto out;
	}
	const redisReply *last = field(g, "last-delivered-id");
	struct sid l;
	if (!last || last->type != REDIS_REPLY_STRING || !parse_sid(last->str, &l)) {
		seterr(s, "%s %s: no last-delivered-id", what, key);
		st = STATUS_INVALID;
		goto out;
	}
	if (sid_cmp(l, *m) < 0)
		*m = l;
	pend = redis_command(s->ctl, &st, "XPENDING %s %s", key, STREAM_GROUP);
	if (!pend) {
		redis_fail(s, s->ctl, st, "XPENDING");
		goto out;
	}
	struct sid oldest;
	if (pend->type == REDIS_REPLY_ARRAY && pend->elements >= 2 &&
	    pend->element[0]->integer > 0 && pend->element[1]->type == REDIS_REPLY_STRING &&
	    parse_sid(pend->element[1]->str, &oldest) && sid_cmp(oldest, *m) < 0)
		*m = oldest;
out:
	if (hold)
		freeReplyObject(hold);
	if (pend)
		freeReplyObject(pend);
	return st;
}

/* XTRIM key MINID [~] m; the count removed into *trimmed.  Under mu. */
static enum status trim_below(struct stream *s, const char *key, struct sid m, bool approx,
                              long long *trimmed)
{
	char minid[STREAM_ID_MAX];
	snprintf(minid, sizeof minid, "%" PRIu64 "-%" PRIu64, m.ms, m.seq);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XTRIM %s MINID %s %s", key,
	                                approx ? "~" : "=", minid);
	if (!rep)
		return redis_fail(s, s->ctl, st, "XTRIM");
	if (trimmed)
		*trimmed = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	return STATUS_OK;
}

enum status stream_trim(struct stream *s, int p, long long *trimmed)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	struct sid m = { UINT64_MAX, UINT64_MAX };
	enum status st = delivered_bound(s, key, "trim", &m);
	if (st == STATUS_OK)
		st = trim_below(s, key, m, false, trimmed);
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* Lowers *m to the oldest position a replica of key's shard published
 * (see stream_retain()).  A value without a readable position keeps
 * everything: that replica may need any entry.  Under mu. */
static enum status replicas_bound(struct stream *s, const char *key, struct sid *m)
{
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "HVALS %s:replicas", key);
	if (!rep)
		return redis_fail(s, s->ctl, st, "HVALS (replicas)");
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *v = rep->element[i];
		char pos[STREAM_ID_MAX] = "";
		struct sid r;
		if (v->type != REDIS_REPLY_STRING ||
		    sscanf(v->str, "%*s %47s", pos) != 1 || !parse_sid(pos, &r))
			r.ms = r.seq = 0;
		if (sid_cmp(r, *m) < 0)
			*m = r;
	}
	freeReplyObject(rep);
	return STATUS_OK;
}

enum status stream_retain(struct stream *s, int p, const char *position,
                          int64_t retention_ms, long long *trimmed)
{
	if (p < 0 || p >= s->partitions || retention_ms < 0)
		return STATUS_INVALID;
	if (trimmed)
		*trimmed = 0;
	struct sid m;
	if (!position || !*position)
		return STATUS_OK; /* a shard that holds nothing needs everything */
	if (!parse_sid(position, &m)) {
		seterr(s, "retain: bad position '%s'", position);
		return STATUS_INVALID;
	}
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st = delivered_bound(s, key, "retain", &m);
	redisReply *t = NULL;
	if (st == STATUS_OK)
		st = replicas_bound(s, key, &m);
	/* Entry ids are Redis's clock: age them by the same clock. */
	if (st == STATUS_OK && !(t = redis_command(s->ctl, &st, "TIME")))
		redis_fail(s, s->ctl, st, "TIME");
	if (st == STATUS_OK) {
		uint64_t now = 0;
		if (t->type == REDIS_REPLY_ARRAY && t->elements == 2 &&
		    t->element[0]->type == REDIS_REPLY_STRING)
			now = strtoull(t->element[0]->str, NULL, 10) * 1000 +
			      strtoull(t->element[1]->str, NULL, 10) / 1000;
		uint64_t cutoff = now > (uint64_t)retention_ms ? now - (uint64_t)retention_ms : 0;
		struct sid c = { cutoff, 0 };
		if (sid_cmp(c, m) < 0)
			m = c;
		if (m.ms || m.seq)
			st = trim_below(s, key, m, true, trimmed);
	}
	if (t)
		freeReplyObject(t);
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_oldest(struct stream *s, int p, char *id)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XRANGE %s - + COUNT 1", key);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XRANGE");
	} else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
	           rep->element[0]->type == REDIS_REPLY_ARRAY &&
	           rep->element[0]->elements >= 1 &&
	           rep->element[0]->element[0]->type == REDIS_REPLY_STRING) {
		snprintf(id, STREAM_ID_MAX, "%s", rep->element[0]->element[0]->str);
	} else {
		seterr(s, "%s: empty", key);
		st = STATUS_NOT_FOUND;
	}
	if (rep)
		freeReplyObject(rep);
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* How many entries after a position stream_replay() looks at to decide
 * whether they are all pending or dead letters (beyond it, it rewinds). */
#define REPLAY_PROBE 1024

/* Returns true in *rewind when an entry of key in (from, to] is neither
 * pending nor one of the wiki's last REPLAY_PROBE dead letters.  Under mu. */
static enum status replay_needed(struct stream *s, const char *key, const char *from,
                                 const char *to, bool *rewind)
{
	enum status st;
	redisReply *rng = NULL, *pend = NULL, *dead = NULL;
	rng = redis_command(s->ctl, &st, "XRANGE %s (%s %s COUNT %d", key, from, to,
	                    REPLAY_PROBE);
	if (!rng)
		return redis_fail(s, s->ctl, st, "XRANGE (replay)");
	size_t n = rng->type == REDIS_REPLY_ARRAY ? rng->elements : 0;
	*rewind = false;
	if (n == 0)
		goto out;
	if (n == REPLAY_PROBE) {
		*rewind = true; /* too many to look at: rewinding is harmless */
		goto out;
	}
	/* The entries to look at: those the group no longer holds. */
	const char **ids = xcalloc(n, sizeof *ids);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = rng->element[i];
		if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1 &&
		    e->element[0]->type == REDIS_REPLY_STRING)
			ids[k++] = e->element[0]->str;
	}
	pend = redis_command(s->ctl, &st, "XPENDING %s %s (%s %s %lu", key, STREAM_GROUP,
	                     from, to, (unsigned long)n + 1);
	if (!pend) {
		free(ids);
		redis_fail(s, s->ctl, st, "XPENDING (replay)");
		goto out;
	}
	for (size_t i = 0; pend->type == REDIS_REPLY_ARRAY && i < pend->elements; i++) {
		const redisReply *e = pend->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		for (size_t j = 0; j < k; j++)
			if (ids[j] && strcmp(ids[j], e->element[0]->str) == 0)
				ids[j] = NULL;
	}
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	dead = redis_command(s->ctl, &st, "XREVRANGE %s + - COUNT %d", dkey, REPLAY_PROBE);
	if (!dead) {
		free(ids);
		redis_fail(s, s->ctl, st, "XREVRANGE (dead letters)");
		goto out;
	}
	for (size_t i = 0; dead->type == REDIS_REPLY_ARRAY && i < dead->elements; i++) {
		const redisReply *e = dead->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
			continue;
		const redisReply *sk = field(e->element[1], "stream"), *id = field(e->element[1], "id");
		if (!sk || !id || sk->type != REDIS_REPLY_STRING || id->type != REDIS_REPLY_STRING ||
		    strcmp(sk->str, key) != 0)
			continue;
		for (size_t j = 0; j < k; j++)
			if (ids[j] && strcmp(ids[j], id->str) == 0)
				ids[j] = NULL;
	}
	for (size_t j = 0; j < k; j++)
		if (ids[j])
			*rewind = true;
	free(ids);
out:
	freeReplyObject(rng);
	if (pend)
		freeReplyObject(pend);
	if (dead)
		freeReplyObject(dead);
	return st;
}

enum status stream_replay(struct stream *s, int p, const char *position,
                          struct stream_replay *out)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	struct stream_replay r;
	memset(&r, 0, sizeof r);
	snprintf(r.from, sizeof r.from, "%s", position && *position ? position : "0-0");
	struct sid from, to = { 0, 0 }, maxdel = { 0, 0 };
	if (!parse_sid(r.from, &from)) {
		seterr(s, "replay: bad position '%s'", r.from);
		return STATUS_INVALID;
	}
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *hold = NULL, *info = NULL, *set = NULL;
	const redisReply *g = group_info(s, key, &hold, &st);
	if (!g) {
		if (st == STATUS_NOT_FOUND)
			seterr(s, "replay %s: no consumer group %s", key, STREAM_GROUP);
		else
			redis_fail(s, s->ctl, st, "XINFO GROUPS");
		goto out;
	}
	const redisReply *last = field(g, "last-delivered-id");
	if (last && last->type == REDIS_REPLY_STRING)
		parse_sid(last->str, &to);
	snprintf(r.to, sizeof r.to, "%" PRIu64 "-%" PRIu64, to.ms, to.seq);
	info = redis_command(s->ctl, &st, "XINFO STREAM %s", key);
	if (!info) {
		redis_fail(s, s->ctl, st, "XINFO STREAM");
		goto out;
	}
	const redisReply *first = field(info, "first-entry"),
	                 *md = field(info, "max-deleted-entry-id"),
	                 *added = field(info, "entries-added"), *len = field(info, "length"),
	                 *lastgen = field(info, "last-generated-id");
	struct sid oldest = { 0, 0 }, newest = { 0, 0 };
	if (first && first->type == REDIS_REPLY_ARRAY && first->elements >= 1 &&
	    first->element[0]->type == REDIS_REPLY_STRING) {
		snprintf(r.oldest, sizeof r.oldest, "%s", first->element[0]->str);
		parse_sid(r.oldest, &oldest);
	}
	if (md && md->type == REDIS_REPLY_STRING)
		parse_sid(md->str, &maxdel);
	if (lastgen && lastgen->type == REDIS_REPLY_STRING)
		parse_sid(lastgen->str, &newest);
	/* XDEL records the highest id it deleted; XTRIM removes a prefix and
	 * records nothing, but the stream then counts fewer entries than were
	 * ever added: entries between the position and the oldest one left
	 * were trimmed (or the position itself was, when it is the entry just
	 * before: an untracked copy, which a consistency pass covers too). */
	bool trimmed = added && len && added->type == REDIS_REPLY_INTEGER &&
	               len->type == REDIS_REPLY_INTEGER && added->integer > len->integer;
	r.gap = sid_cmp(maxdel, from) > 0 ||
	        (trimmed && sid_cmp(from, r.oldest[0] ? oldest : newest) < 0);
	bool rewind = false;
	if (sid_cmp(from, to) < 0 &&
	    (st = replay_needed(s, key, r.from, r.to, &rewind)) != STATUS_OK)
		goto out;
	if (rewind) {
		set = redis_command(s->ctl, &st, "XGROUP SETID %s %s %s", key, STREAM_GROUP,
		                    r.from);
		if (!set) {
			redis_fail(s, s->ctl, st, "XGROUP SETID");
			goto out;
		}
		r.rewound = true;
	}
	*out = r;
out:
	if (hold)
		freeReplyObject(hold);
	if (info)
		freeReplyObject(info);
	if (set)
		freeReplyObject(set);
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_depth(struct stream *s, int p, long long *lag, long long *pending)
{
	if (p < 0 || p >= s->partitions)
		return STATUS_INVALID;
	char key[256];
	stream_key(s, p, key, sizeof key);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *hold = NULL;
	const redisReply *g = group_info(s, key, &hold, &st);
	if (g) {
		const redisReply *l = field(g, "lag"), *pe = field(g, "pending");
		if (lag)
			*lag = l && l->type == REDIS_REPLY_INTEGER ? l->integer : -1;
		if (pending)
			*pending = pe && pe->type == REDIS_REPLY_INTEGER ? pe->integer : 0;
	} else if (st != STATUS_NOT_FOUND) {
		redis_fail(s, s->ctl, st, "XINFO GROUPS");
	} else {
		seterr(s, "%s: no consumer group", key);
	}
	if (hold)
		freeReplyObject(hold);
	pthread_mutex_unlock(&s->mu);
	return st;
}

/* Dead letters. */

static void dead_from_reply(struct stream_dead *d, const redisReply *e)
{
	memset(d, 0, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", e->element[0]->str);
	const redisReply *f = e->elements > 1 ? e->element[1] : NULL;
	for (size_t k = 0; f && f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2) {
		const char *name = f->element[k]->str;
		const redisReply *v = f->element[k + 1];
		if (v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(name, "payload") == 0) {
			d->payload = xstrndup(v->str, v->len);
			d->len = v->len;
		} else if (strcmp(name, "reason") == 0) {
			d->reason = xstrdup(v->str);
		} else if (strcmp(name, "stream") == 0) {
			d->stream = xstrdup(v->str);
		} else if (strcmp(name, "id") == 0) {
			d->source_id = xstrdup(v->str);
		} else if (strcmp(name, "deliveries") == 0) {
			d->deliveries = atol(v->str);
		} else if (strcmp(name, "time") == 0) {
			d->time = xstrdup(v->str);
		}
	}
	if (!d->payload)
		d->payload = xstrdup("");
	if (!d->reason)
		d->reason = xstrdup("");
	if (!d->stream)
		d->stream = xstrdup("");
	if (!d->source_id)
		d->source_id = xstrdup("");
	if (!d->time)
		d->time = xstrdup("");
}

void stream_dead_free(struct stream_dead *d, size_t n)
{
	if (!d)
		return;
	for (size_t i = 0; i < n; i++) {
		free(d[i].payload);
		free(d[i].reason);
		free(d[i].stream);
		free(d[i].source_id);
		free(d[i].time);
	}
	free(d);
}

static enum status dead_range(struct stream *s, const char *start, const char *end,
                              size_t count, struct stream_dead **out, size_t *n)
{
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	enum status st;
	/* hiredis 0.14's format parser knows no %zu. */
	redisReply *rep = redis_command(s->ctl, &st, "XRANGE %s %s %s COUNT %lu", dkey, start,
	                                end, (unsigned long)count);
	if (!rep)
		return redis_fail(s, s->ctl, st, "XRANGE dead letters");
	size_t k = 0;
	struct stream_dead *d = xcalloc(rep->elements ? rep->elements : 1, sizeof *d);
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *e = rep->element[i];
		if (e->type == REDIS_REPLY_ARRAY && e->elements >= 1)
			dead_from_reply(&d[k++], e);
	}
	freeReplyObject(rep);
	*out = d;
	*n = k;
	return STATUS_OK;
}

enum status stream_dead_list(struct stream *s, const char *after, size_t count,
                             struct stream_dead **out, size_t *n)
{
	char start[STREAM_ID_MAX + 2];
	if (after && *after)
		snprintf(start, sizeof start, "(%s", after);
	else
		strcpy(start, "-");
	pthread_mutex_lock(&s->mu);
	enum status st = dead_range(s, start, "+", count ? count : 100, out, n);
	pthread_mutex_unlock(&s->mu);
	return st;
}

static bool id_ok(const char *id)
{
	struct sid x;
	return id && strlen(id) < STREAM_ID_MAX && parse_sid(id, &x);
}

enum status stream_dead_show(struct stream *s, const char *id, struct stream_dead **out)
{
	if (!id_ok(id)) {
		seterr(s, "not a stream id: %s", id ? id : "(null)");
		return STATUS_INVALID;
	}
	size_t n = 0;
	struct stream_dead *d = NULL;
	pthread_mutex_lock(&s->mu);
	enum status st = dead_range(s, id, id, 1, &d, &n);
	if (st == STATUS_OK && n == 0) {
		seterr(s, "no dead letter %s", id);
		stream_dead_free(d, 0);
		st = STATUS_NOT_FOUND;
	} else if (st == STATUS_OK) {
		*out = d;
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_dead_replay(struct stream *s, const char *id)
{
	struct stream_dead *d = NULL;
	enum status st = stream_dead_show(s, id, &d);
	if (st != STATUS_OK)
		return st;
	pthread_mutex_lock(&s->mu);
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	if (key_partition(s, d->stream) < 0) {
		seterr(s, "dead letter %s: source stream \"%s\" is not a partition of wiki %s",
		       id, d->stream, s->wiki);
		st = STATUS_INVALID;
		goto out;
	}
	const char *argv[] = { "XADD", d->stream, "*", "event", d->payload };
	size_t argvlen[] = { 4, strlen(d->stream), 1, 5, d->len };
	if ((st = redis_append(s->ctl, "MULTI")) != STATUS_OK ||
	    (st = redis_appendv(s->ctl, 5, argv, argvlen)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "XDEL %s %s", dkey, id)) != STATUS_OK ||
	    (st = redis_append(s->ctl, "EXEC")) != STATUS_OK) {
		redis_fail(s, s->ctl, st, "replay");
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		enum status rs;
		redisReply *rep = redis_get_reply(s->ctl, &rs);
		if (!rep) {
			if (st == STATUS_OK)
				st = redis_fail(s, s->ctl, rs, "replay");
			if (rs == STATUS_TRANSIENT)
				break;
			continue;
		}
		if (i == 3 && rep->type != REDIS_REPLY_ARRAY && st == STATUS_OK) {
			seterr(s, "replay: transaction failed");
			st = STATUS_TRANSIENT;
		}
		freeReplyObject(rep);
	}
out:
	pthread_mutex_unlock(&s->mu);
	stream_dead_free(d, 1);
	return st;
}

enum status stream_dead_drop(struct stream *s, const char *id)
{
	if (!id_ok(id)) {
		seterr(s, "not a stream id: %s", id ? id : "(null)");
		return STATUS_INVALID;
	}
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XDEL %s %s", dkey, id);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XDEL");
	} else {
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer == 0) {
			seterr(s, "no dead letter %s", id);
			st = STATUS_NOT_FOUND;
		}
		freeReplyObject(rep);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

enum status stream_dead_count(struct stream *s, long long *n)
{
	char dkey[256];
	dead_key(s, dkey, sizeof dkey);
	pthread_mutex_lock(&s->mu);
	enum status st;
	redisReply *rep = redis_command(s->ctl, &st, "XLEN %s", dkey);
	if (!rep) {
		redis_fail(s, s->ctl, st, "XLEN");
	} else {
		*n = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
		freeReplyObject(rep);
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}
