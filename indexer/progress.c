/* SPDX-License-Identifier: MIT */
/*
 * progress.c: the progress line of reindex-page.
 *
 * Invariants: nothing is written more often than every 100 ms on a TTY (a
 * redraw per page would cost more than the page on a fast run), and a TTY
 * line is always cleared to its end so a shorter line leaves no debris.
 * Time is measured with CLOCK_MONOTONIC so a clock change does not produce
 * a negative rate.
 */
#include "now.h"
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xmalloc.h"

struct progress {
	FILE *out;
	char *label;
	uint64_t total, done, failed;
	bool tty;
	unsigned interval_ms;
	double start, last;
};

struct progress *progress_new(FILE *out, const char *label, uint64_t total,
			      bool tty, unsigned interval_ms)
{
	struct progress *p = xcalloc(1, sizeof(*p));
	p->out = out;
	p->label = xstrdup(label ? label : "pages");
	p->total = total;
	p->tty = tty;
	p->interval_ms = interval_ms ? interval_ms : 5000;
	p->start = p->last = now_s();
	return p;
}

void progress_set_total(struct progress *p, uint64_t total)
{
	p->total = total;
}

/* Formats a duration as H:MM:SS or M:SS. */
static void fmt_duration(char *buf, size_t n, double s)
{
	if (s < 0 || s > 1e8) {
		snprintf(buf, n, "?");
		return;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%lu:%02lu", t / 60, t % 60);
}

void progress_format(char *buf, size_t n, const char *label, uint64_t done,
		     uint64_t total, uint64_t failed, double elapsed_s)
{
	double rate = elapsed_s > 0 ? (double)done / elapsed_s : 0;
	char eta[32] = "?";
	if (total && rate > 0 && done <= total)
		fmt_duration(eta, sizeof eta, (double)(total - done) / rate);
	else if (total && done >= total)
		snprintf(eta, sizeof eta, "0:00");
	int len;
	if (total)
		len = snprintf(buf, n, "%llu/%llu %s %.1f/s ETA %s",
			       (unsigned long long)done, (unsigned long long)total,
			       label, rate, eta);
	else
		len = snprintf(buf, n, "%llu %s %.1f/s", (unsigned long long)done,
			       label, rate);
	if (failed && len >= 0 && (size_t)len < n)
		snprintf(buf + len, n - (size_t)len, " failed %llu",
			 (unsigned long long)failed);
}

static void draw(struct progress *p, double t, bool final)
{
	char fig[160];
	progress_format(fig, sizeof fig, p->label, p->done, p->total, p->failed,
			t - p->start);
	if (p->tty) {
		char bar[33];
		size_t width = sizeof bar - 1, fill = 0;
		if (p->total)
			fill = (size_t)((double)width *
					(double)(p->done > p->total ? p->total : p->done) /
					(double)p->total);
		memset(bar, '#', fill);
		memset(bar + fill, '.', width - fill);
		bar[width] = '\0';
		fprintf(p->out, "\r[%s] %s\033[K%s", p->total ? bar : "", fig,
			final ? "\n" : "");
	} else {
		fprintf(p->out, "progress: %s%s\n", fig, final ? " (done)" : "");
	}
	fflush(p->out);
	p->last = t;
}

void progress_add(struct progress *p, uint64_t done, uint64_t failed)
{
	p->done += done;
	p->failed += failed;
	double t = now_s();
	double every = p->tty ? 0.1 : (double)p->interval_ms / 1000.0;
	if (t - p->last >= every)
		draw(p, t, false);
}

void progress_finish(struct progress *p)
{
	if (!p)
		return;
	draw(p, now_s(), true);
	free(p->label);
	free(p);
}
