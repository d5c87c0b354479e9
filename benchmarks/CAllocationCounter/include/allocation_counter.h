#ifndef TALLY_ALLOCATION_COUNTER_H
#define TALLY_ALLOCATION_COUNTER_H
#include <stdint.h>

/// Heap allocations (malloc, calloc, realloc, aligned forms) made by the whole process so far.
uint64_t tally_allocation_count(void);

/// Bytes of heap in use (glibc's `mallinfo2()`: `uordblks` in the arenas plus `hblkhd` mapped on its own), after returning free memory to the system
/// where possible (`malloc_trim(0)`), so the process's resident figures follow it.
uint64_t tally_heap_in_use(void);

#endif
