/* SPDX-License-Identifier: MIT */
/*
 * status.c: names of the status codes.  The table is indexed by the enum, so
 * a new code must be added in both places; the static assertion checks it.
 */
#include "status.h"

static const char *const names[] = {
	[STATUS_OK] = "ok",
	[STATUS_NOMEM] = "out of memory",
	[STATUS_IO] = "i/o error",
	[STATUS_INVALID] = "invalid argument",
	[STATUS_NOT_FOUND] = "not found",
	[STATUS_LOCKED] = "database locked",
	[STATUS_CORRUPT] = "database corrupt",
	[STATUS_XAPIAN] = "xapian error",
	[STATUS_VERSION] = "version mismatch",
	[STATUS_FENCED] = "fenced by a newer owner",
	[STATUS_SKIPPED] = "skipped (older revision)",
	[STATUS_NOOP] = "no-op (identical document)",
	[STATUS_TRANSIENT] = "transient failure",
	[STATUS_PERMANENT] = "permanent failure",
	[STATUS_DECODE] = "malformed input",
	[STATUS_CONFIG] = "configuration error",
	[STATUS_MODIFIED] = "database modified",
	[STATUS_UNKNOWN] = "unknown error",
};

_Static_assert(sizeof names / sizeof names[0] == STATUS__COUNT,
	       "every status has a name");

const char *status_str(enum status st)
{
	if ((unsigned)st >= STATUS__COUNT)
		return "invalid status";
	return names[st];
}

bool status_is_transient(enum status st)
{
	return st == STATUS_TRANSIENT || st == STATUS_LOCKED ||
	       st == STATUS_MODIFIED;
}
