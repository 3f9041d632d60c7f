/* SPDX-License-Identifier: MIT */
/*
 * netns.c: hosts on network namespaces (see netns.h).
 *
 * Namespaces, the bridge, veths and addresses are made with iproute2's
 * `ip` (`ip -n NS ...` works inside a namespace without entering it), so
 * the test process never changes its own namespace's links.  Each veth is
 * made inside the switch namespace with its peer put straight into the
 * host's: it never exists in the root namespace.
 *
 * Invariants: every namespace this handle made is in n->hosts (the switch
 * as hosts[0]); every pid in a host's list was started by netns_spawn()
 * and not yet reaped, so a kill never reaches a reused pid.
 */
#include "netns.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testsupport.h"

#define NETNS_PREFIX "freshet-mh-"
#define NETNS_MAX_HOSTS 12
#define NETNS_MAX_PIDS 32

struct nhost {
	char host[16];
	char ns[64];
	char addr[24];
	pid_t pids[NETNS_MAX_PIDS];
	int n_pids;
};

struct netns {
	struct nhost hosts[NETNS_MAX_HOSTS]; /* [0] is the switch */
	int n;
};

/* Runs `ip ARGS` (names made here, so no quoting is needed); returns its
 * exit status and, in out, what it printed. */
static int ip_run(char *out, size_t cap, const char *args)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ip %s 2>&1", args);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s: %s", cmd, strerror(errno));
	size_t len = 0;
	out[0] = '\0';
	while (len + 1 < cap && fgets(out + len, (int)(cap - len), f))
		len += strlen(out + len);
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int ip_out(char *out, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int ip_out(char *out, size_t cap, const char *fmt, ...)
{
	char args[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	return ip_run(out, cap, args);
}

/* Runs `ip ARGS` and fails the test with ip's message if it fails. */
static void ip_must(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ip_must(const char *fmt, ...)
{
	char args[512], out[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	int rc = ip_run(out, sizeof out, args);
	cr_assert_eq(rc, 0, "`ip %s` failed (exit %d): %s", args, rc, out);
}

/* Kills what still runs in a namespace of a dead run and deletes it. */
static void remove_stale(const char *ns)
{
	char out[4096];
	if (ip_out(out, sizeof out, "netns pids %s", ns) == 0) {
		for (char *s = strtok(out, "\n"); s; s = strtok(NULL, "\n")) {
			long pid = strtol(s, NULL, 10);
			if (pid > 1)
				kill((pid_t)pid, SIGKILL);
		}
	}
	ip_out(out, sizeof out, "netns del %s", ns);
}

/* Removes every namespace of this harness whose creating process is gone. */
static void remove_stale_all(void)
{
	char out[8192];
	cr_assert_eq(ip_out(out, sizeof out, "netns list"), 0,
		     "`ip netns list` fails: %s (test-multihost needs iproute2's ip and "
		     "network namespaces)",
		     out);
	for (char *save, *line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		if (sscanf(line, "%127s", name) != 1 ||
		    strncmp(name, NETNS_PREFIX, strlen(NETNS_PREFIX)) != 0)
			continue;
		long pid = strtol(name + strlen(NETNS_PREFIX), NULL, 10);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		remove_stale(name);
	}
}

static struct nhost *find(const struct netns *n, const char *host)
{
	for (int i = 0; i < n->n; i++)
		if (strcmp(n->hosts[i].host, host) == 0)
			return (struct nhost *)&n->hosts[i];
	cr_assert_fail("no host %s in the test network", host);
	return NULL;
}

/* Makes namespace ns with its loopback up; records it as host. */
static struct nhost *make_ns(struct netns *n, const char *host)
{
	cr_assert_lt(n->n, NETNS_MAX_HOSTS, "too many hosts");
	struct nhost *h = &n->hosts[n->n];
	memset(h, 0, sizeof *h);
	snprintf(h->host, sizeof h->host, "%s", host);
	snprintf(h->ns, sizeof h->ns, NETNS_PREFIX "%ld-%s", (long)getpid(), host);
	ip_must("netns add %s", h->ns);
	n->n++;
	ip_must("-n %s link set lo up", h->ns);
	return h;
}

struct netns *netns_new(void)
{
	cr_assert_eq(geteuid(), 0,
		     "network namespaces need root: run test-multihost as "
		     "root (CI does)");
	remove_stale_all();
	struct netns *n = calloc(1, sizeof *n);
	cr_assert_not_null(n);
	struct nhost *sw = make_ns(n, "switch");
	ip_must("-n %s link add br0 type bridge", sw->ns);
	ip_must("-n %s link set br0 up", sw->ns);
	return n;
}

const char *netns_add_host(struct netns *n, const char *host, int octet)
{
	cr_assert(octet >= 1 && octet <= 254 && strlen(host) <= 8, "bad host %s/%d", host, octet);
	const char *sw = n->hosts[0].ns;
	struct nhost *h = make_ns(n, host);
	snprintf(h->addr, sizeof h->addr, NETNS_SUBNET ".%d", octet);
	ip_must("-n %s link add v%d type veth peer name eth0 netns %s", sw, octet, h->ns);
	ip_must("-n %s link set v%d master br0 up", sw, octet);
	ip_must("-n %s addr add %s/24 dev eth0", h->ns, h->addr);
	ip_must("-n %s link set eth0 up", h->ns);
	return h->ns;
}

const char *netns_name(const struct netns *n, const char *host)
{
	return find(n, host)->ns;
}

const char *netns_addr(const struct netns *n, const char *host)
{
	return find(n, host)->addr;
}

void netns_enter(struct netns *n, const char *host)
{
	const char *ns = find(n, host)->ns;
	cr_assert_eq(test_netns_join(ns), 0, "setns %s: %s", ns, strerror(errno));
}

pid_t netns_spawn(struct netns *n, const char *host, const char *prog, const char *const *args,
		  const char *logfile)
{
	struct nhost *h = find(n, host);
	cr_assert_lt(h->n_pids, NETNS_MAX_PIDS, "too many processes on %s", host);
	pid_t pid = test_spawn_in(h->ns, prog, args, logfile);
	h->pids[h->n_pids++] = pid;
	return pid;
}

/* SIGKILL to pid's group (test_spawn makes one per program) and pid. */
static void kill_reap(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Drops pid from its host's list. */
static void forget(struct netns *n, pid_t pid)
{
	for (int i = 0; i < n->n; i++) {
		struct nhost *h = &n->hosts[i];
		for (int k = 0; k < h->n_pids; k++)
			if (h->pids[k] == pid)
				h->pids[k--] = h->pids[--h->n_pids];
	}
}

void netns_stop(struct netns *n, pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill_reap(*pid);
	forget(n, *pid);
	*pid = 0;
}

int netns_wait(struct netns *n, pid_t *pid)
{
	int ws = 0;
	while (waitpid(*pid, &ws, 0) < 0 && errno == EINTR)
		;
	forget(n, *pid);
	*pid = 0;
	return ws;
}

int netns_kill_host(struct netns *n, const char *host)
{
	struct nhost *h = find(n, host);
	int killed = h->n_pids;
	for (int k = 0; k < h->n_pids; k++)
		kill_reap(h->pids[k]);
	h->n_pids = 0;
	return killed;
}

void netns_free(struct netns *n)
{
	if (!n)
		return;
	char out[1024];
	for (int i = n->n - 1; i >= 0; i--) {
		netns_kill_host(n, n->hosts[i].host);
		if (ip_out(out, sizeof out, "netns del %s", n->hosts[i].ns) != 0)
			cr_log_error("ip netns del %s: %s", n->hosts[i].ns, out);
	}
	free(n);
}
