/* Small shared helpers: scoped cleanup, safe JSON numbers, canonical JSON,
 * ids and clocks. Used by store/, ipc/ (server side) and daemon/. */
#ifndef INSTANTD_UTIL_H
#define INSTANTD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) { free(*(void **)p); }
static inline void cjson_deletep(cJSON **p) { cJSON_Delete(*p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_json_ _cleanup_(cjson_deletep)
#define _cleanup_close_ _cleanup_(closep)

/* Hand ownership of a cleanup-scoped pointer to someone else. */
#define TAKE_PTR(p) ({ __typeof__(p) _tp = (p); (p) = NULL; _tp; })
#define TAKE_FD(fd) ({ int _tf = (fd); (fd) = -1; _tf; })

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Largest integer that cJSON parses exactly (2^53) and prints exactly (2^52). */
#define JSON_INT_PARSE_MAX 9007199254740992LL
#define JSON_INT_PRINT_MAX 4503599627370496LL

/* An integral JSON number within +-2^53 into *ret. -EINVAL if not a number or
 * not integral, -ERANGE if too large. *ret is written only on success. */
int json_get_int64(const cJSON *item, int64_t *ret);
/* A new number node that prints exactly even above 2^52 (a raw node then). NULL on ENOMEM. */
cJSON *json_new_int64(int64_t v);
/* Object member by exact key (cJSON's plain lookup is case-insensitive). */
const cJSON *json_get(const cJSON *obj, const char *key);
/* String member or NULL. */
const char *json_get_string(const cJSON *obj, const char *key);

/* Canonical compact JSON: object keys sorted bytewise, recursively, no
 * whitespace. Equal values give equal strings. Returns a malloc'd string the
 * caller frees, or NULL on ENOMEM. */
char *json_canonical(const cJSON *v);
/* Compact JSON of v, malloc'd (free with free()), NULL on ENOMEM. */
char *json_print(const cJSON *v);
/* Deep equality by canonical form. */
bool json_equal(const cJSON *a, const cJSON *b);

/* A random version-4 UUID as 36 lowercase characters plus NUL. 0 or -EIO. */
int uuid_v4(char out[37]);
bool uuid_valid(const char *s);

int64_t now_ms(void);      /* wall clock, ms since the epoch */
int64_t mono_us(void);     /* monotonic clock, µs */

#endif
