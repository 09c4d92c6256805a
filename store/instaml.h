/* The InstaML transform: InstaML ops ([action, etype, id, args, opts?], the
 * SDK's chunk __ops) to tx-steps, attr creation as @instantdb/core 1.0.67
 * guesses it, rewriting of queued steps against the server's attrs, and shape
 * validation of raw tx-steps. */
#ifndef INSTANTD_INSTAML_H
#define INSTANTD_INSTAML_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "store/attrs.h"

/* Decides update vs create mode: does this entity (or lookup) exist in any of
 * the server stores? The daemon implements it over its query mirrors (the
 * server's triples, without optimistic layers, as the client does).
 * A NULL ctx or NULL callback means "never exists". Asked only for update
 * and merge without an explicit upsert option. */
struct instaml_ctx {
	/* Does eid have any triple whose attr's forward etype is etype? */
	bool (*entity_exists)(void *userdata, const char *etype, const char *eid);
	/* Does any entity have a triple (attr_id, v) with v === value in
	 * JavaScript terms: strings, numbers, booleans and null by value; an
	 * object or array value never matches. attr_id may be a ref attr (for a
	 * "link.id" lookup). */
	bool (*lookup_exists)(void *userdata, const char *attr_id, const cJSON *value);
	void *userdata;
};

/* Transform the op list `ops` (a JSON array of ops) into tx-steps, as
 * @instantdb/core 1.0.67's transform() does without a schema (diff-tested by
 * tests/instaml/diff.mjs). Ids may be uuids, "lookup__<attr>__<json>"
 * strings, [attr, value] arrays or {attr: value} objects, on either side of
 * a link; a 2-element array as a link value is two ids. Missing attrs are
 * created with the client's guesses and unsynced ones re-emitted.
 * Stricter than the client (which would send these on, or throw a TypeError):
 * empty ids, ids that are not strings/arrays/objects, lookup arrays that are
 * not [string, value], non-object attributes or opts, more than 5 elements.
 * attrs: the optimistic attrs (server attrs + unsynced local ones, which carry
 * "isUnsynced": true); not changed.
 * On success returns 0 and *ret_steps is a new array of tx-steps
 * ([...add-attr steps, ...expanded steps]) owned by the caller.
 * On a malformed op returns -EINVAL and *ret_err (malloc'd, caller frees)
 * names the op's 0-based index and the problem ("op 2: unknown action
 * \"upsert\"", "op 0: fullName is not a unique attribute of users");
 * *ret_steps is untouched.
 * -ENOMEM / -EIO (uuid source) otherwise, with no output. ret_err may be NULL. */
int instaml_transform(const struct attrs *attrs, const cJSON *ops,
    const struct instaml_ctx *ctx, cJSON **ret_steps, char **ret_err);

/* The attr objects that the add-attr steps of `steps` create, as a new JSON
 * array of copies owned by the caller (for the daemon to remember as unsynced
 * attrs). 0, -EINVAL (steps not an array), -ENOMEM. */
int instaml_new_attrs(const cJSON *steps, cJSON **ret_attrs);

/* _rewriteMutations for one mutation: rewrite `steps` (a JSON array of
 * tx-steps, changed in place) against the server's attrs (client-semantics
 * 4.5):
 * - an add-attr whose forward (etype, label) the server knows under another
 *   id is dropped and its id mapped to the server's;
 * - a ref add-attr whose forward (etype, label) is a server attr's reverse
 *   identity is dropped, mapped, and e and v of the add-triple and
 *   retract-triple steps on it are swapped;
 * - mapped ids are replaced in every step (also inside [attr-id, value] lookups);
 * - update-attr and delete-attr steps are always dropped (the client's quirk);
 * - with drop_add_attrs (on refresh-ok when the mutation's tx-id <=
 *   processed-tx-id) the remaining add-attr steps are dropped too.
 * *ret_changed tells whether the steps changed. 0, -EINVAL (not an array),
 * -ENOMEM; on an error the steps are unchanged. */
int instaml_rewrite(const struct attrs *server_attrs, cJSON *steps,
    bool drop_add_attrs, bool *ret_changed);

/* The same over a whole queue in processing order, the way the client does
 * it: the id mapping found in earlier mutations also applies to later ones
 * (this only matters for raw tx-steps that use an attr id created by an
 * earlier mutation without re-sending its add-attr). steps[i] is mutation i's
 * step array, changed in place; drop_add_attrs may be NULL (all false);
 * ret_changed (may be NULL) gets one flag per mutation. On an error the
 * mutations before the failing one may already be rewritten. */
int instaml_rewrite_queue(const struct attrs *server_attrs, cJSON *const *steps,
    const bool *drop_add_attrs, size_t n, bool *ret_changed);

/* Shape validation of raw tx-steps sent by a program: an array of known step
 * kinds with the right arity and element types. 0, or -EINVAL with *ret_err
 * (malloc'd, caller frees) naming the step index and the problem. */
int instaml_validate_steps(const cJSON *steps, char **ret_err);

#endif
