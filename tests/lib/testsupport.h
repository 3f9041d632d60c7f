/* SPDX-License-Identifier: MIT */
/*
 * testsupport.h: throwaway servers and scratch space for the tests.
 *
 * Tests never skip because a server is missing: scripts/setup installs
 * redis-server, and these helpers fail the test (cr_assert) when a server
 * cannot be started.  Every server is started on loopback or a unix socket
 * in a private directory and stopped by its pid.
 */
#ifndef FRESHET_TESTSUPPORT_H
#define FRESHET_TESTSUPPORT_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Returns a new private directory under $TMPDIR (or /tmp); caller frees the
 * string and removes the tree with test_rmtree(). */
char *test_mkdtemp(const char *tag);
/* Removes a directory tree (rm -rf). */
void test_rmtree(const char *path);
/* Returns a TCP port on 127.0.0.1 that was free a moment ago. */
int test_free_port(void);
/* Returns the path of a file under the source tree ($FRESHET_SRCDIR). The
 * result is a newly allocated string. */
char *test_srcpath(const char *rel);
/* Reads a whole file; returns NULL if it cannot.  Caller frees. */
char *test_read_file(const char *path, size_t *len);

/* Starts the program prog as built ($FRESHET_BUILDDIR/prog, else ./prog;
 * an absolute path as it is, for a system program)
 * with the arguments args (NULL-terminated, at most 30; args may be NULL),
 * in its own process group, killed when the test process dies, its stdout
 * and stderr appended to logfile.  Returns its pid (the caller waits for
 * it or stops it); fails the test if it cannot fork. */
pid_t test_spawn(const char *prog, const char *const *args, const char *logfile);
/* test_spawn() inside the network namespace netns (a name under
 * /run/netns, as `ip netns add` makes; NULL: the caller's).  A child that
 * cannot enter it exits 126, saying why in logfile. */
pid_t test_spawn_in(const char *netns, const char *prog, const char *const *args,
		    const char *logfile);
/* Moves the calling thread into the network namespace name (setns);
 * threads and processes it starts later are there too.  Returns 0, or -1
 * with errno set.  Needs CAP_SYS_ADMIN (root). */
int test_netns_join(const char *name);

/* Waits until something answers HTTP at url (any status: a server that is
 * up), at most 30 s.  Fails the test, naming log (where the program's
 * output goes), if process pid exits first or nothing answers in time. */
void test_wait_http(const char *url, pid_t pid, const char *log);

/* True when the bytes of word are in a regular file under dir, at any
 * depth (symbolic links are not followed). */
bool test_dir_holds(const char *dir, const char *word);

/* Returns a page event built from the fixture
 * tests/fixtures/events/<fixture>.json ("create", "edit", "delete",
 * "undelete", "move", "rerender", ...), so that tests send events shaped
 * as the schemas are rather than written by hand.  wiki_id and the page id
 * are set; title replaces the page title unless NULL; rev_id > 0 replaces
 * the revision id.  The page and rerender schemas keep these fields in
 * different places; both are handled.  Fails the test if the fixture cannot
 * be read.  The caller owns the object (json_decref) and may change more
 * fields before dumping it. */
json_t *test_event_json(const char *fixture, const char *wiki, long page_id,
			const char *title, long rev_id);
/* test_event_json() as compact JSON text; the caller frees it. */
char *test_event(const char *fixture, const char *wiki, long page_id,
		 const char *title, long rev_id);

struct test_redis {
	char *dir;      /* private directory: socket, append-only file, log */
	char *socket;   /* unix socket path */
	char *url;      /* redis://127.0.0.1:<port>/0 */
	int port;
	pid_t pid;
	int replica_of; /* the primary's port, 0 for a primary */
	char host[64];  /* the address it listens on (and the URL names) */
	char primary_host[64]; /* the primary's, for a replica */
	char *netns;    /* the network namespace it runs in, or NULL */
};

/* Starts a redis-server (append-only, fsync always, so a restart keeps
 * everything) and waits until it answers PING.  Fails the test if it cannot.
 * The caller stops it with test_redis_stop(). */
struct test_redis *test_redis_start(void);
/* Starts a redis-server like test_redis_start() as a replica of primary
 * (--replicaof; NULL starts a primary). */
struct test_redis *test_redis_start_replica(const struct test_redis *primary);
/* test_redis_start_replica() inside the network namespace netns (NULL: the
 * caller's), listening on host (NULL: 127.0.0.1), an address of that
 * namespace which the caller reaches.  The port is one free on the
 * caller's loopback. */
struct test_redis *test_redis_start_at(const char *netns, const char *host,
				       const struct test_redis *primary);
/* Kills the server with SIGKILL (a crash: no last write reaches the disk or
 * a replica) and keeps its directory. */
void test_redis_kill9(struct test_redis *r);
/* Stops the server by its pid (SIGTERM, then SIGKILL after 5 s) and keeps
 * its directory, so that test_redis_resume() brings the same data back. */
void test_redis_pause(struct test_redis *r);
/* Starts the server again on the same port, socket and data. */
void test_redis_resume(struct test_redis *r);
/* Stops the server, removes its directory and frees r.  NULL is a no-op. */
void test_redis_stop(struct test_redis *r);

/* The sum of the samples of a program's Prometheus endpoint
 * (http://127.0.0.1:<port>/metrics) whose line starts with prefix (a name
 * and its opening brace) and contains needle (NULL: any); -1 when the
 * endpoint does not answer. */
double test_metric_sum(int port, const char *prefix, const char *needle);

#define TEST_MAX_SENTINELS 5

/* Redis Sentinels watching one primary, on 127.0.0.1 (redis-server
 * --sentinel, each with its own configuration file in dir). */
struct test_sentinels {
	int n;
	int port[TEST_MAX_SENTINELS];
	pid_t pid[TEST_MAX_SENTINELS];
	char list[TEST_MAX_SENTINELS * 72]; /* "host:port,...", for freshet.conf */
	char host[64];  /* the address they listen on */
	char *dir;
	char *name;     /* the master name they monitor */
};

/* Starts n sentinels monitoring primary as name, with a quorum of a
 * majority, down-after-milliseconds 1000 and failover-timeout 4000, and
 * waits until each knows the others and the primary's replicas.  Fails the
 * test if they do not within 30 s.  Stop them with test_sentinels_stop(). */
struct test_sentinels *test_sentinels_start(const struct test_redis *primary,
					    const char *name, int n);
/* test_sentinels_start() inside the network namespace netns (NULL: the
 * caller's), listening on host (NULL: 127.0.0.1); they reach primary at
 * primary->host. */
struct test_sentinels *test_sentinels_start_at(const char *netns, const char *host,
					       const struct test_redis *primary,
					       const char *name, int n);
/* The port of the primary the sentinels name now (the first that answers),
 * or 0 when none does. */
int test_sentinels_primary(const struct test_sentinels *s);
/* Stops the sentinels by pid, removes their directory (kept with
 * FRESHET_TEST_KEEP) and frees s.  NULL is a no-op. */
void test_sentinels_stop(struct test_sentinels *s);

/* Whether the consumer group "freshet" of the stream key (through c) has
 * handed out every entry (its last-delivered id is the stream's last
 * generated id) and holds none pending; a stream or group that does not
 * exist has nothing to hand out.  When not, or when Redis does not
 * answer, false with the reason in why.  Compares ids, not XINFO's "lag",
 * a counter a Redis failover can leave off by the entries of a read. */
bool test_stream_drained(redisContext *c, const char *key, char *why, size_t len);

/* Kills *pid (SIGKILL), reaps it and sets *pid to 0.  *pid <= 0 is a
 * no-op. */
void test_stop_pid(pid_t *pid);

#endif
