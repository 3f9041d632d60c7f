/* SPDX-License-Identifier: MIT */
/*
 * harness.h: the stage the end-to-end benchmarks run on (bench-pipeline,
 * bench-searchd): a private directory, a redis-server, nginx serving a
 * corpus of bench/make-pipeline-corpus.sh as a wiki's Action API (with an
 * overlay for the pages a bench edits or deletes), the real freshet-worker,
 * and the events that feed it.
 *
 * Everything is process-wide state for one bench program: call
 * harness_init() first, then harness_corpus(); every server is started on
 * loopback, and harness_stop_all() (also called by harness_die()) stops
 * each by its pid and removes the private directory unless harness_keep.
 * Not thread-safe: one thread uses it (the Redis connection harness_rc
 * included).
 */
#ifndef FRESHET_BENCH_HARNESS_H
#define FRESHET_BENCH_HARNESS_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIKI "benchwiki"
#define MAXP 64

/* The private directory (/tmp/freshet-<prog>-XXXXXX once harness_init()
 * made it). */
extern char harness_dir[256];
extern pid_t harness_redis_pid, harness_nginx_pid, harness_worker_pid;
extern redisContext *harness_rc;
extern int harness_shards;       /* of the worker's wiki; default 4 */
extern int harness_npages;       /* pages of the corpus used; default 20000 */
extern bool harness_keep;        /* keep the private directory */
extern char harness_worker_bin[4096];   /* default ./freshet-worker */
extern char harness_worker_extra[1024]; /* lines appended to [worker] */
extern int harness_api_port, harness_redis_port;
/* Per page id (1..harness_npages): its current revision, whether the
 * overlay deleted it. */
extern uint64_t *harness_cur_rev;
extern bool *harness_deleted;
/* Called by harness_stop_all() before it stops the servers (a bench's
 * own processes), or NULL. */
extern void (*harness_at_stop)(void);

/* Records prog (for messages) and makes the private directory; resolves
 * harness_worker_bin to an absolute path and sets FRESHET_ANALYZER_DIR to
 * ./analyzers/.libs unless set.  Dies if the worker is not executable. */
void harness_init(const char *prog);
/* Dies unless path (size bytes) names an executable, which option -opt
 * sets; makes it absolute. */
void harness_program(char *path, size_t size, char opt);
/* "PASS" or "MISS". */
const char *harness_verdict(bool ok);
/* Returns the absolute path of the corpus of harness_npages pages: corpus,
 * or when NULL one generated into the private directory by
 * bench/make-pipeline-corpus.sh (from $srcdir, else ..).  Allocates the
 * per-page arrays.  The result is owned by the harness. */
const char *harness_corpus(const char *corpus);

double harness_now(void);
/* Prints "prog: message", stops everything and exits 1. */
void harness_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Writes a file atomically (temporary file and rename). */
void harness_write_file(const char *path, const char *data, size_t len);
int harness_free_port(void);
bool harness_port_open(int port);
/* Starts argv (PATH searched) with stdout and stderr appended to out and
 * env_add put into its environment. */
pid_t harness_spawn(char *const argv[], const char *out, char *const env_add[]);
/* harness_spawn() in a process group of its own (setpgid), for servers
 * that signal their whole group when they exit (xapian-tcpsrv,
 * xapian-replicate-server) and for processes whose children may. */
pid_t harness_spawn_group(char *const argv[], const char *out, char *const env_add[]);
/* harness_spawn() as user (for servers that refuse to run as root, such
 * as PostgreSQL) when the bench runs as root; as the bench's user
 * otherwise. */
pid_t harness_spawn_user(char *const argv[], const char *out, const char *user);
/* Waits until pid listens on port; dies if it exits or never does. */
void harness_wait_port(pid_t pid, int port, const char *what);
/* Sends sig, waits up to 30 s, then SIGKILL; sets *pid to 0. */
void harness_stop_pid(pid_t *pid, int sig);
void harness_stop_all(void);

/* redis-server on port (no persistence); connects harness_rc to it. */
void harness_start_redis(int port);
/* nginx on port serving corpus (see bench-pipeline.c for the URLs). */
void harness_start_nginx(int port, const char *corpus);
/* The stage every bench's worker plays on: redis-server and nginx serving
 * corpus, each on a free port (harness_redis_port, harness_api_port). */
void harness_start_stage(const char *corpus);
/* Writes a worker configuration to path: harness_redis_port's Redis,
 * data_dir, worker_extra (lines of [worker]), a [wiki <wiki>] section on
 * harness_api_port's API with harness_shards shards, then sections
 * (further sections, or NULL). */
void harness_worker_conf(const char *path, const char *data_dir, const char *wiki,
			 const char *worker_extra, const char *sections);
/* Starts freshet-worker --config conf (harness_worker_bin), logging to
 * <dir>/worker-<tag>.log, in a process group of its own when own_group;
 * returns its pid, which the caller stops. */
pid_t harness_run_worker(const char *conf, const char *tag, bool own_group);
/* freshet-worker on wiki, logging to <dir>/worker-<tag>.log; its
 * configuration is <dir>/freshet-<wiki>.conf, its shards under
 * <dir>/data-<wiki>. */
void harness_start_worker(const char *wiki, const char *tag);

/* A Redis command on harness_rc; dies on an error.  Caller frees. */
redisReply *harness_cmd(const char *fmt, ...);

struct harness_sid { uint64_t ms, seq; };
struct harness_sid harness_sid_parse(const char *s);
int harness_sid_cmp(struct harness_sid a, struct harness_sid b);
void harness_stream_key(char *buf, size_t len, const char *wiki, int p);
/* Last id added per partition (what "drained" is compared with). */
extern struct harness_sid harness_last_added[MAXP];
/* XADDs n events (pipelined): edits of pages[i] at revs[i] (NULL: 0), or
 * deletes where dels[i]; ids[i] gets the entry id when ids is not NULL. */
void harness_produce(const char *wiki, const int64_t *pages, const uint64_t *revs,
		     const bool *dels, size_t n, struct harness_sid *ids);
/* Group state of partition p: last delivered id; *pending entries. */
struct harness_sid harness_group_state(const char *wiki, int p, long long *pending);
bool harness_drained(const char *wiki);
bool harness_worker_alive(void);
/* Waits until every entry added is acknowledged; returns when. */
double harness_wait_drained(const char *wiki, double timeout_s);
/* Waits until the worker holds every lease of wiki. */
void harness_wait_ready(const char *wiki);

/* A field of /proc/<pid>/status in KiB (VmHWM, VmRSS), or -1. */
long harness_vm_kib(pid_t pid, const char *field);
/* User + system CPU seconds of pid. */
double harness_cpu_of(pid_t pid);

/* Dies when the file is not JSON.  Caller owns the reference. */
json_t *harness_load_json(const char *path);
/* Gives page id a new revision in the overlay (a new paragraph, a new
 * revid in its parse and info answers); returns the revid. */
uint64_t harness_edit_page(const char *corpus, int64_t id);
/* Makes page id missing in the overlay. */
void harness_delete_page(int64_t id);

int harness_cmp_double(const void *a, const void *b);
/* A deterministic xorshift sequence. */
uint64_t harness_rnd(void);

#endif
