/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: a mutex-guarded registry of Prometheus series and, apart from
 * it, the HTTP server that exposes them.
 *
 * Invariants: series are only ever added, never removed, so a rendering
 * sees each series once; a series' type is its metric's declared type (an
 * undeclared name is an untyped gauge).  The registry knows nothing of the
 * server: the server only calls metrics_render().
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "buf.h"
#include "now.h"
#include "xmalloc.h"

struct family {
	char *name;
	char *help;
	enum metrics_type type;
	double *buckets;
	int n_buckets;
};

struct series {
	int family;          /* index into families, -1 when undeclared */
	char *name;
	char *labels;
	double value;        /* counter/gauge value; histogram sum */
	unsigned long long count;
	unsigned long long *bucket_counts; /* histograms: per bucket (non-cumulative) */
};

struct metrics {
	pthread_mutex_t mu;
	struct family *families;
	size_t n_families;
	struct series *series;
	size_t n_series;

	struct server *server; /* NULL when not listening */
	int port;
};

static void server_free(struct server *sv);

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof *m);
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	server_free(m->server);
	for (size_t i = 0; i < m->n_families; i++) {
		free(m->families[i].name);
		free(m->families[i].help);
		free(m->families[i].buckets);
	}
	free(m->families);
	for (size_t i = 0; i < m->n_series; i++) {
		free(m->series[i].name);
		free(m->series[i].labels);
		free(m->series[i].bucket_counts);
	}
	free(m->series);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static int find_family(struct metrics *m, const char *name)
{
	for (size_t i = 0; i < m->n_families; i++)
		if (strcmp(m->families[i].name, name) == 0)
			return (int)i;
	return -1;
}

void metrics_declare(struct metrics *m, const char *name, enum metrics_type t,
		     const char *help, const double *buckets, int n)
{
	pthread_mutex_lock(&m->mu);
	if (find_family(m, name) < 0) {
		m->families = xrealloc(m->families, (m->n_families + 1) *
						     sizeof *m->families);
		struct family *f = &m->families[m->n_families++];
		f->name = xstrdup(name);
		f->help = xstrdup(help ? help : "");
		f->type = t;
		f->n_buckets = t == METRICS_HISTOGRAM ? n : 0;
		f->buckets = NULL;
		if (f->n_buckets > 0) {
			f->buckets = xmalloc((size_t)n * sizeof *f->buckets);
			memcpy(f->buckets, buckets, (size_t)n * sizeof *f->buckets);
		}
	}
	pthread_mutex_unlock(&m->mu);
}

/* Returns the series name{labels}, creating it; the mutex is held. */
static struct series *get_series(struct metrics *m, const char *name,
				 const char *labels)
{
	if (!labels)
		labels = "";
	for (size_t i = 0; i < m->n_series; i++)
		if (strcmp(m->series[i].name, name) == 0 &&
		    strcmp(m->series[i].labels, labels) == 0)
			return &m->series[i];
	m->series = xrealloc(m->series, (m->n_series + 1) * sizeof *m->series);
	struct series *s = &m->series[m->n_series++];
	memset(s, 0, sizeof *s);
	s->family = find_family(m, name);
	s->name = xstrdup(name);
	s->labels = xstrdup(labels);
	if (s->family >= 0 && m->families[s->family].n_buckets > 0)
		s->bucket_counts = xcalloc((size_t)m->families[s->family].n_buckets,
					   sizeof *s->bucket_counts);
	return s;
}

void metrics_add(struct metrics *m, const char *name, const char *labels,
		 double v)
{
	pthread_mutex_lock(&m->mu);
	get_series(m, name, labels)->value += v;
	pthread_mutex_unlock(&m->mu);
}

void metrics_set(struct metrics *m, const char *name, const char *labels,
		 double v)
{
	pthread_mutex_lock(&m->mu);
	get_series(m, name, labels)->value = v;
	pthread_mutex_unlock(&m->mu);
}

void metrics_observe(struct metrics *m, const char *name, const char *labels,
		     double v)
{
	pthread_mutex_lock(&m->mu);
	struct series *s = get_series(m, name, labels);
	s->value += v;
	s->count++;
	if (s->family >= 0) {
		const struct family *f = &m->families[s->family];
		for (int i = 0; i < f->n_buckets; i++)
			if (v <= f->buckets[i]) {
				s->bucket_counts[i]++;
				break;
			}
	}
	pthread_mutex_unlock(&m->mu);
}

double metrics_get(struct metrics *m, const char *name, const char *labels)
{
	double v = 0;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_series; i++)
		if (strcmp(m->series[i].name, name) == 0 &&
		    strcmp(m->series[i].labels, labels ? labels : "") == 0) {
			const struct series *s = &m->series[i];
			bool hist = s->family >= 0 &&
				    m->families[s->family].type == METRICS_HISTOGRAM;
			v = hist ? (double)s->count : s->value;
		}
	pthread_mutex_unlock(&m->mu);
	return v;
}

static void add_labels(struct buf *b, const char *labels, const char *extra)
{
	bool any = *labels || extra;
	if (!any)
		return;
	buf_addch(b, '{');
	buf_adds(b, labels);
	if (extra) {
		if (*labels)
			buf_addch(b, ',');
		buf_adds(b, extra);
	}
	buf_addch(b, '}');
}

char *metrics_render(struct metrics *m)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	struct buf b = BUF_INIT;
	pthread_mutex_lock(&m->mu);
	for (size_t f = 0; f <= m->n_families; f++) {
		/* f == n_families collects the undeclared names. */
		const struct family *fam = f < m->n_families ? &m->families[f] : NULL;
		bool header = false;
		for (size_t i = 0; i < m->n_series; i++) {
			const struct series *s = &m->series[i];
			if (fam ? s->family != (int)f : s->family >= 0)
				continue;
			if (fam && !header) {
				buf_addf(&b, "# HELP %s %s\n# TYPE %s %s\n", fam->name,
					 fam->help, fam->name, type_names[fam->type]);
				header = true;
			}
			if (fam && fam->type == METRICS_HISTOGRAM) {
				unsigned long long cum = 0;
				char le[64];
				for (int k = 0; k < fam->n_buckets; k++) {
					cum += s->bucket_counts[k];
					buf_addf(&b, "%s_bucket", s->name);
					snprintf(le, sizeof le, "le=\"%g\"", fam->buckets[k]);
					add_labels(&b, s->labels, le);
					buf_addf(&b, " %llu\n", cum);
				}
				buf_addf(&b, "%s_bucket", s->name);
				add_labels(&b, s->labels, "le=\"+Inf\"");
				buf_addf(&b, " %llu\n", s->count);
				buf_addf(&b, "%s_sum", s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %.6f\n", s->value);
				buf_addf(&b, "%s_count", s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %llu\n", s->count);
			} else {
				buf_adds(&b, s->name);
				add_labels(&b, s->labels, NULL);
				buf_addf(&b, " %.17g\n", s->value);
			}
		}
	}
	pthread_mutex_unlock(&m->mu);
	return buf_detach(&b, NULL);
}

/*
 * The HTTP server.  libmicrohttpd parses the requests; one thread of ours
 * drives its event loop (epoll, never blocking longer than POLL_MS) so that
 * the loop can also enforce what libmicrohttpd cannot: a deadline on the
 * whole connection.  libmicrohttpd's own timeout only measures idleness, so
 * a client that sends one byte now and then would keep a connection for
 * ever.  Every connection is noted in a list when it starts and dropped when
 * it closes, both from this thread (libmicrohttpd calls back from the thread
 * that runs it), so the deadline check needs no lock and never touches a
 * closed descriptor: it shuts the socket down and libmicrohttpd then closes
 * the connection as it would a client that went away.
 */

/* Idle time after which libmicrohttpd drops a connection, in seconds. */
#define IDLE_TIMEOUT_S 2
/* Time a connection may live, from accept to the last byte sent. */
#define DEADLINE_MS 5000
/* Connections served at once; more wait in the listen backlog. */
#define MAX_CONNECTIONS 32
/* Longest wait for network events before the loop checks deadlines and
 * whether it must stop. */
#define POLL_MS 100

struct conn {
	int fd;
	int64_t deadline;
	bool cut;
	struct conn *next;
};

struct server {
	struct MHD_Daemon *d;
	struct conn *conns;
	pthread_t thread;
	atomic_bool stop;
};

/* Notes each connection with its deadline and forgets it when it closes. */
static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	struct server *sv = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct conn *cn = xcalloc(1, sizeof *cn);
		cn->fd = ci ? ci->connect_fd : -1;
		cn->deadline = now_ms() + DEADLINE_MS;
		cn->next = sv->conns;
		sv->conns = cn;
		*ctx = cn;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *ctx) {
		for (struct conn **pp = &sv->conns; *pp; pp = &(*pp)->next)
			if (*pp == *ctx) {
				*pp = (*pp)->next;
				break;
			}
		free(*ctx);
		*ctx = NULL;
	}
}

/* Cuts the connections past their deadline. */
static void enforce_deadlines(struct server *sv)
{
	int64_t now = now_ms();
	for (struct conn *cn = sv->conns; cn; cn = cn->next)
		if (!cn->cut && cn->fd >= 0 && now >= cn->deadline) {
			shutdown(cn->fd, SHUT_RDWR);
			cn->cut = true;
		}
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned int code,
				  const char *type, char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Answers GET (or HEAD) /metrics with the exposition text, the rest with
 * 404.  A request body is read and ignored. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **req_ctx)
{
	struct metrics *m = cls;
	(void)version;
	(void)upload;
	if (!*req_ctx) {
		/* First call: headers only; answer once the body (if any) is in. */
		*req_ctx = m;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (get && strcmp(url, "/metrics") == 0)
		return queue_text(c, MHD_HTTP_OK,
				  "text/plain; version=0.0.4; charset=utf-8",
				  metrics_render(m));
	return queue_text(c, MHD_HTTP_NOT_FOUND, "text/plain",
			  xstrdup("try GET /metrics\r\n"));
}

static void *server_main(void *arg)
{
	struct server *sv = arg;
	while (!atomic_load(&sv->stop)) {
		MHD_run_wait(sv->d, POLL_MS);
		enforce_deadlines(sv);
	}
	return NULL;
}

/* Stops the thread, closes every connection and the listening socket. */
static void server_free(struct server *sv)
{
	if (!sv)
		return;
	atomic_store(&sv->stop, true);
	pthread_join(sv->thread, NULL);
	/* Closing calls on_connection() for each connection still open. */
	MHD_stop_daemon(sv->d);
	while (sv->conns) {
		struct conn *cn = sv->conns;
		sv->conns = cn->next;
		free(cn);
	}
	free(sv);
}

/* Binds and listens on host:port; returns the socket or -1 with errbuf. */
static int listen_on(const char *host, int port, char *errbuf, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		snprintf(errbuf, errlen, "metrics_listen %s:%d: %s", host, port,
			 gai_strerror(rc));
		return -1;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(errbuf, errlen, "metrics_listen %s:%d: %s", host, port,
			 strerror(err));
	return fd;
}

enum status metrics_listen(struct metrics *m, const char *host, int port,
			   char *errbuf, size_t errlen)
{
	if (m->server) {
		snprintf(errbuf, errlen, "metrics server already running");
		return STATUS_INVALID;
	}
	if (!host)
		host = "127.0.0.1";
	int fd = listen_on(host, port, errbuf, errlen);
	if (fd < 0)
		return STATUS_IO;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	int bound = ntohs(ss.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&ss)->sin6_port
				  : ((struct sockaddr_in *)&ss)->sin_port);

	struct server *sv = xcalloc(1, sizeof *sv);
	atomic_init(&sv->stop, false);
	/* From here on libmicrohttpd owns fd: MHD_stop_daemon() closes it. */
	sv->d = MHD_start_daemon(
		MHD_USE_EPOLL, 0, NULL, NULL, on_request, m,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)MAX_CONNECTIONS,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, sv,
		MHD_OPTION_END);
	if (!sv->d) {
		snprintf(errbuf, errlen, "metrics_listen %s:%d: cannot start the HTTP server",
			 host, port);
		free(sv);
		return STATUS_IO;
	}
	if (pthread_create(&sv->thread, NULL, server_main, sv) != 0) {
		snprintf(errbuf, errlen, "metrics_listen: cannot start a thread");
		MHD_stop_daemon(sv->d);
		free(sv);
		return STATUS_IO;
	}
	m->server = sv;
	m->port = bound;
	return STATUS_OK;
}

int metrics_port(const struct metrics *m)
{
	return m->port;
}
