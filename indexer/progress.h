/* SPDX-License-Identifier: MIT */
/*
 * progress.h: progress reporting for long operator runs (reindex-page).
 *
 * On a terminal the report is one line redrawn in place (carriage return)
 * with a bar, pages done out of the total, the rate and the time left; when
 * the stream is not a terminal, a plain line with the same figures is
 * written every `interval_ms` milliseconds, so that logs of a cron job or a
 * systemd unit stay readable.  Single-threaded: one struct progress per
 * thread that reports.
 */
#ifndef FRESHET_PROGRESS_H
#define FRESHET_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress;

/* Returns a new reporter writing to `out` (borrowed, must outlive the
 * reporter).  `label` is copied.  `total` is the number of items expected
 * (0 when unknown; progress_set_total() can set it later).  `tty` selects the
 * redrawn line; pass isatty(fileno(out)) for the usual choice.  Plain lines
 * come every `interval_ms` (0 means 5000).  Never NULL (aborts on OOM). */
struct progress *progress_new(FILE *out, const char *label, uint64_t total,
			      bool tty, unsigned interval_ms);

void progress_set_total(struct progress *p, uint64_t total);

/* Counts `done` more items finished, `failed` of them failures, and redraws
 * or prints if it is time to. */
void progress_add(struct progress *p, uint64_t done, uint64_t failed);

/* Writes the final line (always, also when not a TTY) and frees p.  NULL is
 * a no-op. */
void progress_finish(struct progress *p);

/* Formats the figures of a report into buf (size n): "120/300 pages
 * 40.0/s ETA 0:04 failed 1".  Exposed for the tests.  `elapsed_s` > 0. */
void progress_format(char *buf, size_t n, const char *label, uint64_t done,
		     uint64_t total, uint64_t failed, double elapsed_s);

#endif
