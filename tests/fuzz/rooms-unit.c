/* rooms-unit.c: daemon/rooms.c is linked into instantd only, not into a
 * library; the upstream harness compiles it here to reach rooms_apply_edits. */
#include "daemon/rooms.c"
