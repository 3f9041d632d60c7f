/* SPDX-License-Identifier: MIT */
/*
 * replica.h: copies of a wiki's shards on other hosts, through Xapian's
 * own replication (xapian-replicate-server and xapian-replicate); freshet
 * speaks no replication protocol of its own.  doc/operations.md
 * "Replication" is the operator's side, doc/shards.md "Replicas" the
 * layout on disk.
 *
 * Three parts:
 *
 *   - The writer keeps changesets.  Xapian writes a changeset per commit
 *     only when XAPIAN_MAX_CHANGESETS is set in the writing process's
 *     environment (read at every commit); replica_keep_changesets() sets
 *     it from [replication] changesets.  Without changesets a replica can
 *     only be brought up to date by a full copy.
 *
 *   - The writer publishes where its shard is served from: while a worker
 *     holds partition N's lease it keeps the Redis key
 *     freshet:{<wiki>:p<N>}:writer set to "<advertise> <wiki>/current/shard-<N>"
 *     ([replication] advertise, then the shard's path relative to
 *     data_dir), with the lease's expiry (replica_publish()).  The path
 *     goes through `current`, which xapian-replicate-server follows, so a
 *     new generation reaches the replicas as a full copy.
 *     xapian-replicate-server itself is the operator's unit, one per host:
 *     it is stateless and serves whatever databases exist under data_dir.
 *
 *   - A worker supervises the replica clients of its host (struct
 *     replica): for each partition of a replicated wiki ([replication]
 *     wikis) that it does not write, one child
 *
 *         xapian-replicate -q -h HOST -p PORT -i INTERVAL -r 0 -m PATH
 *                          <data_dir>/<wiki>/replica/shard-<N>
 *
 *     started, restarted with backoff when it exits, restarted with a
 *     forced full copy when the published writer changes (after a
 *     promotion the new writer's revisions are not the old one's), and
 *     stopped (SIGTERM, then waited for) when the partition becomes ours,
 *     when nobody publishes it, when the writer is this host, or at
 *     replica_free().  Children get SIGTERM when the thread that started
 *     them ends (PR_SET_PDEATHSIG), so a killed worker leaves no orphan.
 *
 * Threads: a struct replica is used by one thread, which must outlive its
 * children (the pipeline's reader).  The other functions may be called
 * from any thread.
 */
#ifndef FRESHET_REPLICA_H
#define FRESHET_REPLICA_H

#include <stdbool.h>

#include "conf.h"
#include "redis.h"
#include "status.h"

/* Sets XAPIAN_MAX_CHANGESETS to [replication] changesets when that is
 * above 0 (leaves the environment alone otherwise).  Call in main() of
 * every program that writes shards, before threads start (setenv is not
 * thread-safe). */
void replica_keep_changesets(const struct conf *cfg);

/* Returns the published value of partition's writer for this host,
 * "<advertise> <wiki>/current/shard-<partition>", or NULL when [replication]
 * advertise is empty.  Caller frees. */
char *replica_writer_value(const struct conf *cfg, const char *wiki, int partition);

/* Sets the writer key of partition to value (from replica_writer_value())
 * for ttl_ms.  r is borrowed for the call.  STATUS_OK or STATUS_TRANSIENT
 * (Redis away). */
enum status replica_publish(struct redis *r, const char *wiki, int partition,
			    const char *value, int ttl_ms);

/* Sets *value (caller frees) to the published writer of partition, or to
 * NULL when none is published.  STATUS_OK or STATUS_TRANSIENT. */
enum status replica_writer_get(struct redis *r, const char *wiki, int partition,
			       char **value);

/* Publishes what this host's replica of partition holds, in the hash
 * freshet:{<wiki>:p<N>}:replicas: field advertise (this host), value
 * "<revision> <position> <unix time>" (position "-" when none).  The hash
 * expires ttl_ms after the last report of any host.  STATUS_OK or
 * STATUS_TRANSIENT. */
enum status replica_report(struct redis *r, const char *wiki, int partition,
			   const char *advertise, unsigned long long revision,
			   const char *position, int ttl_ms);

/* One host's copy of a shard, as replica_report() published it. */
struct replica_host {
	char host[256];                  /* its advertised host:port */
	unsigned long long revision;     /* Xapian revision of its copy */
	char position[64];               /* stored stream position, "-" if none */
	long long time;                  /* unix seconds of the report */
};

/* Sets *hosts (caller frees; NULL when none) and *n to the copies of
 * partition's shard reported in freshet:{<wiki>:p<N>}:replicas, sorted by
 * host.  STATUS_OK or STATUS_TRANSIENT. */
enum status replica_hosts_get(struct redis *r, const char *wiki, int partition,
			      struct replica_host **hosts, size_t *n);

struct replica;

/* Returns the supervisor of wiki's replica clients (cfg and wiki borrowed,
 * they must outlive it).  Nothing is started yet.  Never NULL. */
struct replica *replica_new(const struct conf *cfg, const struct conf_wiki *wiki);

/*
 * Brings partition's replica client in line with writer, the published
 * writer value ("host:port path", borrowed) or NULL: runs the client when
 * writer names another host, stops it otherwise.  Also reaps a client that
 * exited (logged) and restarts it after a backoff.  Cheap when nothing
 * changes: call it for every partition not held, at every lease tick.
 */
void replica_follow(struct replica *r, int partition, const char *writer);

/* Stops partition's client (SIGTERM) and waits for it to exit.  No-op when
 * none runs. */
void replica_stop(struct replica *r, int partition);

/* True while partition's client runs. */
bool replica_running(const struct replica *r, int partition);

/* Stops every client, waits for them, and frees r.  NULL is a no-op. */
void replica_free(struct replica *r);

#endif
