/*
 * The role matrix: each role (as a user binding and as a group binding)
 * against each request class, scoped operators on VMs inside and outside
 * their patterns, root, and nobody.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "clusterd.h"

static const struct role_binding bindings[] = {
	{ ROLE_ADMIN, 0, 1001, { NULL }, 0 },
	{ ROLE_OPERATOR, 0, 1002, { NULL }, 0 },
	{ ROLE_OPERATOR, 0, 1003, { "web-*", "db1" }, 2 },
	{ ROLE_VIEWER, 0, 1004, { NULL }, 0 },
	{ ROLE_ADMIN, 1, 2001, { NULL }, 0 },		/* group "haven-admins" */
	{ ROLE_OPERATOR, 1, 2002, { "lab-*" }, 1 },	/* group "lab-ops" */
	{ ROLE_VIEWER, 1, 2004, { NULL }, 0 },
};
#define NB	(sizeof bindings / sizeof bindings[0])

static int
allow(uid_t uid, gid_t gid, gid_t extra, enum request_class class,
    const char *vm)
{
	struct identity	who;

	memset(&who, 0, sizeof who);
	who.uid = uid;
	who.gid = gid;
	if (extra != 0) {
		who.groups[0] = extra;
		who.ngroups = 1;
	}
	return roles_allow(bindings, NB, &who, class, vm, NULL);
}

static void
test_matrix(void **state)
{
	/* uid, read, vm(web-1), vm(other), admin */
	static const struct {
		uid_t	uid;
		gid_t	extra;
		int	read, vm_in, vm_out, admin;
	} rows[] = {
		{ 0, 0, 1, 1, 1, 1 },		/* root */
		{ 1001, 0, 1, 1, 1, 1 },	/* admin */
		{ 1002, 0, 1, 1, 1, 0 },	/* operator, unscoped */
		{ 1003, 0, 1, 1, 0, 0 },	/* operator of web-* and db1 */
		{ 1004, 0, 1, 0, 0, 0 },	/* viewer */
		{ 1005, 0, 0, 0, 0, 0 },	/* nobody */
		{ 1005, 2001, 1, 1, 1, 1 },	/* member of the admin group */
		{ 1005, 2004, 1, 0, 0, 0 },	/* member of the viewer group */
	};
	size_t	i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		assert_int_equal(allow(rows[i].uid, 100, rows[i].extra,
		    REQUEST_READ, NULL), rows[i].read);
		assert_int_equal(allow(rows[i].uid, 100, rows[i].extra,
		    REQUEST_VM, "web-1"), rows[i].vm_in);
		assert_int_equal(allow(rows[i].uid, 100, rows[i].extra,
		    REQUEST_VM, "mail"), rows[i].vm_out);
		assert_int_equal(allow(rows[i].uid, 100, rows[i].extra,
		    REQUEST_ADMIN, NULL), rows[i].admin);
	}
	/* Exact names and the primary group count too. */
	assert_true(allow(1003, 100, 0, REQUEST_VM, "db1"));
	assert_false(allow(1003, 100, 0, REQUEST_VM, "db10"));
	assert_true(allow(1005, 2002, 0, REQUEST_VM, "lab-7"));
	assert_false(allow(1005, 2002, 0, REQUEST_VM, "prod-7"));
	/* A scoped operator's VM request with no VM named is refused. */
	assert_false(allow(1003, 100, 0, REQUEST_VM, NULL));
}

static void
test_granted_and_names(void **state)
{
	struct identity	who = { .uid = 1003, .gid = 100 };
	enum role	granted, r;

	assert_false(roles_allow(bindings, NB, &who, REQUEST_ADMIN, NULL,
	    &granted));
	assert_int_equal(granted, ROLE_OPERATOR);
	assert_string_equal(roles_name(ROLE_VIEWER), "viewer");
	assert_int_equal(roles_parse("admin", &r), 0);
	assert_int_equal(r, ROLE_ADMIN);
	assert_int_equal(roles_parse("root", &r), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_granted_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
