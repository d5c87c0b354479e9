#ifndef TALLY_ALLOCATION_COUNTER_H
#define TALLY_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, aligned forms) made by the whole process so far.
uint64_t tally_allocation_count(void);

#endif
