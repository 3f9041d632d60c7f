/* SPDX-License-Identifier: MIT */
/*
 * idset.h: a set of page ids (positive 64-bit integers).
 *
 * Open addressing with linear probing in a power-of-two table kept at most
 * half full, so adding and looking up stay constant time and selecting a
 * million pages stays linear.  0 marks an empty slot and is never an id.
 * A struct idset set to all zeroes ({ 0 }) is an empty set that owns
 * nothing; growth aborts on out of memory (xmalloc).  Not thread-safe.
 */
#ifndef FRESHET_IDSET_H
#define FRESHET_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct idset {
	int64_t *v;
	size_t cap, n;   /* cap is 0 or a power of two; n ids are in v */
};

/* Adds id (> 0); returns false when it was there already. */
bool idset_add(struct idset *s, int64_t id);

/* True when id is in s. */
bool idset_has(const struct idset *s, int64_t id);

/* Frees the table and leaves s empty and reusable. */
void idset_clear(struct idset *s);

#endif
