/* SPDX-License-Identifier: MIT */
/*
 * metrics.h: Prometheus text metrics and the tiny HTTP server that serves
 * them (freshet-worker's metrics_listen, off by default).
 *
 * A struct metrics is a small registry of series: counters, gauges and
 * histograms, each named by a metric name plus a label string written as
 * Prometheus writes it (`wiki="enwiki",kind="edit"`).  Every update takes
 * the registry's mutex, so any thread may update any series; the number of
 * series is small (tens to a few hundred) and updates are per page, so a
 * mutex and a linear search cost nothing next to a fetch.
 *
 * metrics_listen() starts one thread that answers `GET /metrics` with the
 * text exposition format (version 0.0.4) and anything else with 404.  It
 * serves up to 32 connections at once (libmicrohttpd, HTTP/1.1 answers with
 * `Connection: close`); a connection idle for 2 seconds, or still open 5
 * seconds after it was accepted, is closed, so slow clients can neither
 * hold the endpoint nor delay metrics_free() by more than a fraction of a
 * second.
 */
#ifndef FRESHET_METRICS_H
#define FRESHET_METRICS_H

#include <stddef.h>

#include "status.h"

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

struct metrics;

/* Returns a new empty registry.  Never NULL (aborts on out of memory). */
struct metrics *metrics_new(void);

/* Stops the server thread (if any), closing its connections whatever their
 * state, and frees m.  Call it after every thread updating m has stopped.
 * NULL is a no-op. */
void metrics_free(struct metrics *m);

/* Declares metric name with its type and help text (copied); call before
 * the first update of the name.  Histograms use the buckets given in
 * seconds (n values, ascending, copied); counters and gauges pass NULL, 0. */
void metrics_declare(struct metrics *m, const char *name, enum metrics_type t,
		     const char *help, const double *buckets, int n);

/* Adds v to the counter or gauge series name{labels} (created at 0). */
void metrics_add(struct metrics *m, const char *name, const char *labels,
		 double v);
/* Sets the gauge series name{labels} to v. */
void metrics_set(struct metrics *m, const char *name, const char *labels,
		 double v);
/* Records one observation v into the histogram series name{labels}. */
void metrics_observe(struct metrics *m, const char *name, const char *labels,
		     double v);
/* Returns the current value of a counter or gauge series (0 if absent), or
 * the count of a histogram series.  For tests. */
double metrics_get(struct metrics *m, const char *name, const char *labels);

/* Returns the exposition text of every series (caller frees). */
char *metrics_render(struct metrics *m);

/* Listens on host:port (host NULL: 127.0.0.1; port 0: any free port) and
 * serves the metrics from a new thread.  Returns STATUS_OK, STATUS_IO with
 * the reason in errbuf (errlen bytes) when the address cannot be bound, or
 * STATUS_INVALID when a server already runs.  The port bound is returned by
 * metrics_port(). */
enum status metrics_listen(struct metrics *m, const char *host, int port,
			   char *errbuf, size_t errlen);
/* The port the server listens on, 0 when it does not. */
int metrics_port(const struct metrics *m);

#endif
