/*
 * now.h: the clocks freshet reads, in one place.
 *
 * now_ms() is for deadlines, intervals and timeouts: it is monotonic and
 * never jumps when the wall clock is set.  now_wall_ms() is for what is
 * stored or shown (dead-letter times, commit times): milliseconds since
 * the Unix epoch, which may jump.  now_s() is now_ms() as seconds, for
 * rates.  All are thread-safe and cannot fail on Linux.
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

#endif
