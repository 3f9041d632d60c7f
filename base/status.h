/* SPDX-License-Identifier: MIT */
/*
 * status.h: the one status code every fallible call in freshet returns.
 *
 * A status says what kind of failure happened; the message that says what
 * exactly failed lives in the handle that failed (for example
 * shard_errmsg(sh)), never in a global.  The split between transient and
 * permanent failures is decided where the failure is detected: callers use
 * status_is_transient() to choose between retrying and dead-lettering.
 */
#ifndef FRESHET_STATUS_H
#define FRESHET_STATUS_H

#include <stdbool.h>

enum status {
	STATUS_OK = 0,
	STATUS_NOMEM,        /* out of memory (only behind an ABI; programs abort) */
	STATUS_IO,           /* a system call failed; errno-derived message */
	STATUS_INVALID,      /* bad argument or bad input */
	STATUS_NOT_FOUND,    /* the thing asked for does not exist */
	STATUS_LOCKED,       /* another writer holds the database */
	STATUS_CORRUPT,      /* a database or file is damaged */
	STATUS_XAPIAN,       /* any other Xapian error */
	STATUS_VERSION,      /* stored schema/analyzer/ABI version differs */
	STATUS_FENCED,       /* a newer fencing token owns the shard */
	STATUS_SKIPPED,      /* write not applied: older revision (rev guard) */
	STATUS_NOOP,         /* write not applied: identical document */
	STATUS_TRANSIENT,    /* try again later (timeouts, 5xx, Redis gone) */
	STATUS_PERMANENT,    /* will never succeed (dead-letter it) */
	STATUS_DECODE,       /* malformed input (event, response) */
	STATUS_CONFIG,       /* bad configuration */
	STATUS_MODIFIED,     /* a reader's revision was overwritten: reopen */
	STATUS_UNKNOWN,      /* an exception of unknown type */
	STATUS__COUNT
};

/* Returns a short constant English name of st ("ok", "locked", ...).
 * Never NULL; unknown values give "invalid status". Thread-safe. */
const char *status_str(enum status st);

/* Returns true when a retry of the same operation may succeed. */
bool status_is_transient(enum status st);

#endif
