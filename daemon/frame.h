/* frame.h: parsing a server frame so that a large one's computations can be
 * parsed and applied one at a time, instead of the whole frame first. */
#ifndef INSTANTD_FRAME_H
#define INSTANTD_FRAME_H

#include <stddef.h>
#include <cjson/cJSON.h>

/* Frames smaller than this are parsed whole: splitting them saves nothing. */
#define FRAME_SPLIT_MIN (64 * 1024)

/* Parse a frame of len bytes at s into *ret (owned by the caller). A frame
 * of at least FRAME_SPLIT_MIN bytes that is one object with a
 * "computations" array comes back with each element of that array as a
 * cJSON raw item holding its JSON text, unparsed (frame_item_parse reads
 * it); everything else is parsed as usual. The text of s is left as it was
 * (bytes are borrowed for a moment, so s must be writable).
 * -EINVAL: not JSON (nothing is returned); -ENOMEM. */
int frame_parse(char *s, size_t len, cJSON **ret);

/* A raw item of such an array (cJSON_IsRaw) parsed into *ret (owned by the
 * caller). -EINVAL: its text is not JSON, or item is not raw; -ENOMEM. */
int frame_item_parse(const cJSON *item, cJSON **ret);

#endif
