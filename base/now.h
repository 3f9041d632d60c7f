/* SPDX-License-Identifier: MIT */
/*
 * now.h: the clocks freshet reads, in one place.
 *
 * now_ms() is for deadlines, intervals and timeouts: it is monotonic and
 * never jumps when the wall clock is set.  now_wall_ms() is for what is
 * stored or shown (dead-letter times, commit times): milliseconds since
 * the Unix epoch, which may jump.  now_s() is now_ms() as seconds, for
 * rates.  sleep_ms() waits on the monotonic clock too.  All are
 * thread-safe and cannot fail on Linux.
 */
#ifndef FRESHET_NOW_H
#define FRESHET_NOW_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC (an arbitrary origin). */
int64_t now_ms(void);

/* Seconds on CLOCK_MONOTONIC, with nanosecond resolution. */
double now_s(void);

/* Milliseconds since 1970-01-01T00:00:00Z on CLOCK_REALTIME. */
int64_t now_wall_ms(void);

/* Sleeps for ms milliseconds (none when ms <= 0); a signal does not cut the
 * sleep short. */
void sleep_ms(int64_t ms);

#endif
