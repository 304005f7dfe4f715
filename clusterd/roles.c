/*
 * Who may do what on the control socket (DESIGN §7): admin (everything),
 * operator (VM operations, optionally only on VMs whose names match its
 * patterns) and viewer (read-only), granted to users or groups. Pure
 * logic: the bindings come from the cluster state, the identity from
 * SO_PEERCRED; root is always admin.
 */
#include <fnmatch.h>
#include <string.h>

#include "clusterd.h"

const char *
roles_name(enum role role)
{
	switch (role) {
	case ROLE_NONE:
		return "none";
	case ROLE_VIEWER:
		return "viewer";
	case ROLE_OPERATOR:
		return "operator";
	case ROLE_ADMIN:
		return "admin";
	}
	return "?";
}

int
roles_parse(const char *s, enum role *role)
{
	if (strcmp(s, "viewer") == 0)
		*role = ROLE_VIEWER;
	else if (strcmp(s, "operator") == 0)
		*role = ROLE_OPERATOR;
	else if (strcmp(s, "admin") == 0)
		*role = ROLE_ADMIN;
	else
		return -1;
	return 0;
}

const char *
roles_class_name(enum request_class class)
{
	switch (class) {
	case REQUEST_READ:
		return "read";
	case REQUEST_VM:
		return "VM operation";
	case REQUEST_ADMIN:
		return "administration";
	}
	return "?";
}

static int
roles_binding_matches(const struct role_binding *b,
    const struct identity *who)
{
	size_t	i;

	if (b->is_group) {
		if (b->id == who->gid)
			return 1;
		for (i = 0; i < who->ngroups; i++) {
			if (who->groups[i] == b->id)
				return 1;
		}
		return 0;
	}
	return b->id == who->uid;
}

/* An operator binding with patterns covers only the VMs they match. */
static int
roles_scope_covers(const struct role_binding *b, const char *vm_name)
{
	size_t	i;

	if (b->npatterns == 0)
		return 1;
	if (vm_name == NULL)
		return 0;
	for (i = 0; i < b->npatterns; i++) {
		if (fnmatch(b->patterns[i], vm_name, 0) == 0)
			return 1;
	}
	return 0;
}

/*
 * May `who` make a request of `class` (on VM `vm_name`, for VM requests)?
 * 1 yes, 0 no; *granted gets the strongest role that applied, for the
 * refusal message.
 */
int
roles_allow(const struct role_binding *bindings, size_t n,
    const struct identity *who, enum request_class class, const char *vm_name,
    enum role *granted)
{
	enum role	best = ROLE_NONE;
	size_t		i;
	int		allowed = 0;

	if (who->uid == 0) {
		if (granted != NULL)
			*granted = ROLE_ADMIN;
		return 1;
	}
	for (i = 0; i < n; i++) {
		const struct role_binding	*b = &bindings[i];

		if (!roles_binding_matches(b, who))
			continue;
		if (b->role > best)
			best = b->role;
		switch (class) {
		case REQUEST_READ:
			allowed |= b->role >= ROLE_VIEWER;
			break;
		case REQUEST_VM:
			allowed |= b->role == ROLE_ADMIN ||
			    (b->role == ROLE_OPERATOR &&
			    roles_scope_covers(b, vm_name));
			break;
		case REQUEST_ADMIN:
			allowed |= b->role == ROLE_ADMIN;
			break;
		}
	}
	if (granted != NULL)
		*granted = best;
	return allowed;
}
