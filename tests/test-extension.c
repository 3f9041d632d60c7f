/* test-extension.c: the Freshet MediaWiki extension end to end (being written). */
#include <criterion/criterion.h>
