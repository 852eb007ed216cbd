/*
 * Heap memory of cloudapp-ticketd is wiped when it is freed.  A ticket
 * passes through buffers the daemon does not own: libcurl's download
 * buffer, json-c's parser and printer buffers, which grow by realloc().
 * The daemon wipes its own copies, but those libraries free theirs as they
 * are, and a ticket would stay readable in freed memory, in a core dump
 * for example, long after it was handed out.
 *
 * glibc supports replacing malloc() in the executable.  These wrappers
 * forward to glibc's own allocator (__libc_malloc and friends) and
 * explicit_bzero() each block before it is freed, also inside realloc(),
 * which would otherwise free the old block as it is.  Only this program
 * links this file, not the PAM module or cloudappctl.
 *
 * NOTE: memory freed by glibc internally (for example by reallocarray())
 * does not pass through these wrappers.
 *
 * AddressSanitizer replaces malloc() itself, and memory from its
 * allocator must not reach __libc_free(), so a build with
 * -fsanitize=address leaves these wrappers out and does not wipe freed
 * blocks.
 */

#include "config.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define WIPEALLOC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WIPEALLOC_UNDER_ASAN 1
#endif
#endif

#ifndef WIPEALLOC_UNDER_ASAN

/* glibc's exported entry points to its own allocator.  The reserved
 * names are glibc's, and this file must call them. */
/* NOLINTBEGIN(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void __libc_free(void *ptr);
/* NOLINTEND(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp) */

void *malloc(size_t size)
{
	return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
	return __libc_calloc(count, size);
}

void free(void *ptr)
{
	if (!ptr)
		return;
	explicit_bzero(ptr, malloc_usable_size(ptr));
	__libc_free(ptr);
}

/* Always moves the data, so the old block is wiped before it is freed. */
void *realloc(void *ptr, size_t size)
{
	size_t old_size;
	void *grown;

	if (!ptr)
		return __libc_malloc(size);
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	old_size = malloc_usable_size(ptr);
	/* Shrinking, or growing within the block, keeps it in place. */
	if (size <= old_size)
		return ptr;
	grown = __libc_malloc(size);
	if (!grown)
		return NULL;
	memcpy(grown, ptr, old_size);
	free(ptr);
	return grown;
}

#endif /* !WIPEALLOC_UNDER_ASAN */
