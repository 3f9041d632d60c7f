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

#include <jansson.h>
#include <stdbool.h>
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

/* Starts the program prog as built ($FRESHET_BUILDDIR/prog, else ./prog)
 * with the arguments args (NULL-terminated, at most 30; args may be NULL),
 * in its own process group, killed when the test process dies, its stdout
 * and stderr appended to logfile.  Returns its pid (the caller waits for
 * it or stops it); fails the test if it cannot fork. */
pid_t test_spawn(const char *prog, const char *const *args, const char *logfile);

/* Waits until something answers HTTP at url (any status: a server that is
 * up), at most 30 s.  Fails the test, naming log (where the program's
 * output goes), if process pid exits first or nothing answers in time. */
void test_wait_http(const char *url, pid_t pid, const char *log);

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
};

/* Starts a redis-server (append-only, fsync always, so a restart keeps
 * everything) and waits until it answers PING.  Fails the test if it cannot.
 * The caller stops it with test_redis_stop(). */
struct test_redis *test_redis_start(void);
/* Stops the server by its pid (SIGTERM, then SIGKILL after 5 s) and keeps
 * its directory, so that test_redis_resume() brings the same data back. */
void test_redis_pause(struct test_redis *r);
/* Starts the server again on the same port, socket and data. */
void test_redis_resume(struct test_redis *r);
/* Stops the server, removes its directory and frees r.  NULL is a no-op. */
void test_redis_stop(struct test_redis *r);

/* Kills *pid (SIGKILL), reaps it and sets *pid to 0.  *pid <= 0 is a
 * no-op. */
void test_stop_pid(pid_t *pid);

#endif
