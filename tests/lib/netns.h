/* SPDX-License-Identifier: MIT */
/*
 * netns.h: several "hosts" on one machine, for multi-host tests, made of
 * Linux network namespaces.
 *
 * netns_new() makes a "switch" namespace holding a Linux bridge; each
 * netns_add_host() makes a namespace with a veth into that bridge, named
 * eth0 and addressed NETNS_SUBNET.<octet>/24, and its loopback up.  Every
 * address, route and link lives inside namespaces made here: the root
 * namespace is never changed, and nothing leaves the namespaces but
 * through loopback.  Namespace names carry a prefix and the creating
 * process's pid ("freshet-mh-<pid>-<host>"), so parallel runs do not
 * collide, and a run removes the leftovers of earlier runs whose process
 * is gone (killing what still runs in them) before it makes its own.
 *
 * Programs are started in a host with netns_spawn() (test_spawn_in()),
 * which records their pids; netns_kill_host() kills all of a host's
 * recorded processes with SIGKILL (a machine that dies), by pid.  The test
 * process itself joins a host with netns_enter(), so that its own clients
 * (curl, hiredis) reach every host's address.
 *
 * Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2's `ip`:
 * netns_new() fails the test saying so when either is missing.  Like the
 * rest of tests/lib, every failure fails the running Criterion test.
 * Threads: one thread per struct netns.
 */
#ifndef FRESHET_NETNS_H
#define FRESHET_NETNS_H

#include <sys/types.h>

#define NETNS_SUBNET "10.231.0"

struct netns;

/* Checks that `ip netns` works, removes stale namespaces of earlier runs
 * and makes the switch.  Returns the handle (freed by netns_free()). */
struct netns *netns_new(void);

/* Makes host (a short name: letters and digits, at most 8) with the
 * address NETNS_SUBNET.<octet> (1..254, unique per handle).  Returns the
 * namespace's name (owned by n, valid until netns_free()), for
 * test_spawn_in(), mw_opts.netns and test_redis_start_at(). */
const char *netns_add_host(struct netns *n, const char *host, int octet);

/* The namespace name and the address ("10.231.0.N") of a host made by
 * netns_add_host(); owned by n.  Fails the test for an unknown host. */
const char *netns_name(const struct netns *n, const char *host);
const char *netns_addr(const struct netns *n, const char *host);

/* Moves the calling thread (the test) into host's namespace. */
void netns_enter(struct netns *n, const char *host);

/* Starts prog in host as test_spawn_in() does and records its pid as one
 * of host's processes. */
pid_t netns_spawn(struct netns *n, const char *host, const char *prog, const char *const *args,
		  const char *logfile);

/* Kills *pid's process group (and *pid) with SIGKILL, reaps it, forgets
 * it and sets *pid to 0.  *pid <= 0 is a no-op. */
void netns_stop(struct netns *n, pid_t *pid);

/* Waits until *pid (started by netns_spawn()) exits, forgets it, sets
 * *pid to 0 and returns its wait status. */
int netns_wait(struct netns *n, pid_t *pid);

/* Kills every recorded process of host with SIGKILL (their process groups
 * too), reaps and forgets them.  Returns how many there were. */
int netns_kill_host(struct netns *n, const char *host);

/* Kills every recorded process, deletes every namespace made here (the
 * bridge and veths go with them) and frees n.  NULL is a no-op. */
void netns_free(struct netns *n);

#endif
