/*
 * havenctl's one argument parser (cli/args.c): options with and without
 * values in every form getopt_long takes, repeated options, the operand
 * counts of a spec and their messages, --json at any place, "--", --help,
 * and the messages getopt prints for a bad option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

#define NARGS(a)	((int)(sizeof (a) / sizeof (a)[0]) - 1)

/* Like disk create: TARGET --size SIZE [--type T] [--force]. */
static const struct args_spec create_spec = {
	.options = (const struct args_option[]) {
		{ "size", 's', ARGS_VALUE },
		{ "type", 't', ARGS_VALUE },
		{ "force", 'f', 0 },
		{ "state-size", 0, ARGS_VALUE },
		{ NULL, 0, 0 },
	},
	.lower = 1, .upper = 1,
	.too_few = "expected one TARGET",
};

/* Like role grant: [--vm PATTERN]... ROLE PRINCIPAL. */
static const struct args_spec grant_spec = {
	.options = (const struct args_option[]) {
		{ "vm", 'v', ARGS_VALUE },
		{ NULL, 0, 0 },
	},
	.lower = 2, .upper = 2,
	.too_few = "expected ROLE and PRINCIPAL",
};

/* Like vm list: no options of its own, no operands. */
static const struct args_spec list_spec = { .options = NULL };

/*
 * Parse, with stderr caught in msg: getopt prints its complaints there.
 * Returns the args (NULL on an error, *cause as args_parse left it).
 */
static struct args *
parse(const struct args_spec *spec, int argc, char **argv,
    const char **cause, char *msg, size_t len)
{
	struct args	*a;
	FILE		*f;
	size_t		 n;
	int		 saved;

	fflush(stderr);
	assert_non_null(f = tmpfile());
	assert_true((saved = dup(2)) != -1);
	assert_int_equal(dup2(fileno(f), 2), 2);
	a = args_parse(spec, argc, argv, cause);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	rewind(f);
	n = fread(msg, 1, len - 1, f);
	msg[n] = '\0';
	fclose(f);
	return a;
}

static void
test_values(void **state)
{
	char		*argv[] = { "disk create", "x.img", "--size", "64M",
			    "--force", NULL };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	a = parse(&create_spec, NARGS(argv), argv, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_string_equal(msg, "");
	assert_int_equal(args_has(a, "force"), 1);
	assert_null(args_get(a, "force"));
	assert_int_equal(args_has(a, "size"), 1);
	assert_string_equal(args_get(a, "size"), "64M");
	assert_int_equal(args_has(a, "type"), 0);
	assert_null(args_get(a, "type"));
	assert_int_equal(args_has(a, "json"), 0);
	assert_int_equal(args_count(a), 1);
	assert_string_equal(args_positional(a, 0), "x.img");
	assert_null(args_positional(a, 1));
	assert_null(args_positional(a, -1));
	args_free(a);
}

/* Every spelling getopt_long accepts, as the per-command loops did. */
static void
test_forms(void **state)
{
	char		*eq[] = { "disk create", "--size=1G", "x", NULL };
	char		*attached[] = { "disk create", "-s1G", "x", NULL };
	char		*letter[] = { "disk create", "x", "-s", "1G", NULL };
	char		*bundled[] = { "disk create", "-fs", "1G", "x", NULL };
	char		*prefix[] = { "disk create", "--si", "1G", "x", NULL };
	char		*exact[] = { "disk create", "--size", "1G", "x",
			    "--state-size", "2G", NULL };
	char		**all[] = { eq, attached, letter, bundled, prefix,
			    exact };
	int		 argcs[] = { NARGS(eq), NARGS(attached), NARGS(letter),
			    NARGS(bundled), NARGS(prefix), NARGS(exact) };
	struct args	*a;
	const char	*cause;
	char		 msg[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < sizeof all / sizeof all[0]; i++) {
		a = parse(&create_spec, argcs[i], all[i], &cause, msg,
		    sizeof msg);
		assert_non_null(a);
		assert_string_equal(args_get(a, "size"), "1G");
		assert_string_equal(args_positional(a, 0), "x");
		assert_int_equal(args_has(a, "force"), all[i] == bundled);
		args_free(a);
	}
}

/* A repeated option: every value in order; args_get gives the last. */
static void
test_repeated(void **state)
{
	char		*argv[] = { "role grant", "--vm", "web*", "operator",
			    "-v", "db*", "uid:1", "--vm=x", NULL };
	struct args	*a;
	const char	*cause, *name, *value;
	char		 msg[256];
	int		 i = 0;

	(void)state;
	a = parse(&grant_spec, NARGS(argv), argv, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "vm"), 3);
	assert_string_equal(args_value(a, "vm", 0), "web*");
	assert_string_equal(args_value(a, "vm", 1), "db*");
	assert_string_equal(args_value(a, "vm", 2), "x");
	assert_null(args_value(a, "vm", 3));
	assert_string_equal(args_get(a, "vm"), "x");
	assert_int_equal(args_count(a), 2);
	assert_string_equal(args_positional(a, 0), "operator");
	assert_string_equal(args_positional(a, 1), "uid:1");
	/* args_next: the order given. */
	while ((name = args_next(a, &i, &value)) != NULL)
		assert_string_equal(name, "vm");
	assert_int_equal(i, 3);
	args_free(a);
}

static void
test_next_order(void **state)
{
	char		*argv[] = { "disk create", "--type", "fixed", "--json",
			    "x", "-f", "--size", "1M", NULL };
	static const char *want[] = { "type", "json", "force", "size" };
	struct args	*a;
	const char	*cause, *name, *value;
	char		 msg[256];
	int		 i = 0, n = 0;

	(void)state;
	a = parse(&create_spec, NARGS(argv), argv, &cause, msg, sizeof msg);
	assert_non_null(a);
	while ((name = args_next(a, &i, &value)) != NULL) {
		assert_true(n < 4);
		assert_string_equal(name, want[n]);
		if (n == 0)
			assert_string_equal(value, "fixed");
		if (n == 1 || n == 2)
			assert_null(value);
		n++;
	}
	assert_int_equal(n, 4);
	args_free(a);
}

static void
test_missing_value(void **state)
{
	char		*long_form[] = { "disk create", "x", "--size", NULL };
	char		*letter[] = { "disk create", "x", "-s", NULL };
	struct args	*a;
	const char	*cause = "unset";
	char		 msg[256];

	(void)state;
	a = parse(&create_spec, NARGS(long_form), long_form, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_null(cause);	/* getopt said it */
	assert_string_equal(msg,
	    "disk create: option '--size' requires an argument\n");
	a = parse(&create_spec, NARGS(letter), letter, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_null(cause);
	assert_string_equal(msg,
	    "disk create: option requires an argument -- 's'\n");
}

static void
test_unknown(void **state)
{
	char		*bogus[] = { "disk create", "x", "--bogus", NULL };
	char		*letter[] = { "disk create", "-Z", "x", NULL };
	char		*flag_value[] = { "disk create", "x", "--force=1",
			    NULL };
	char		*json_value[] = { "vm list", "--json=yes", NULL };
	char		*ambiguous[] = { "disk create", "--s", "1", "x", NULL };
	char		*help_value[] = { "vm list", "--help=1", NULL };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	a = parse(&create_spec, NARGS(bogus), bogus, &cause, msg, sizeof msg);
	assert_null(a);
	assert_null(cause);
	assert_string_equal(msg,
	    "disk create: unrecognized option '--bogus'\n");
	a = parse(&create_spec, NARGS(letter), letter, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_string_equal(msg, "disk create: invalid option -- 'Z'\n");
	a = parse(&create_spec, NARGS(flag_value), flag_value, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_string_equal(msg,
	    "disk create: option '--force' doesn't allow an argument\n");
	a = parse(&list_spec, NARGS(json_value), json_value, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_string_equal(msg,
	    "vm list: option '--json' doesn't allow an argument\n");
	a = parse(&create_spec, NARGS(ambiguous), ambiguous, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_non_null(strstr(msg, "option '--s' is ambiguous"));
	/* --help is answered before parsing, and only as a whole word. */
	a = parse(&list_spec, NARGS(help_value), help_value, &cause, msg,
	    sizeof msg);
	assert_null(a);
	assert_string_equal(msg, "vm list: unrecognized option '--help=1'\n");
}

/* Operand counts, and which message each spec gives. */
static void
test_operands(void **state)
{
	static const struct args_spec	 vm_name = {
		.lower = 1, .upper = 1,
		.too_few = "a VM name is required",
		.too_many = "one VM name expected",
	};
	static const struct args_spec	 serve = {
		.lower = 1, .upper = 1,
		.too_few = "TARGET is required",
		.too_many = "too many arguments",
	};
	static const struct args_spec	 at_most_one = {
		.upper = 1,
		.too_many = "at most one NAME",
	};
	static const struct args_spec	 generic = { .lower = 2, .upper = 3 };
	static const struct args_spec	 any = { .lower = 0, .upper = -1 };
	char		*none[] = { "cmd", NULL };
	char		*one[] = { "cmd", "a", NULL };
	char		*two[] = { "cmd", "a", "b", NULL };
	char		*four[] = { "cmd", "a", "b", "c", "d", NULL };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	assert_null(parse(&vm_name, NARGS(none), none, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "a VM name is required");
	assert_string_equal(msg, "");
	assert_null(parse(&vm_name, NARGS(two), two, &cause, msg, sizeof msg));
	assert_string_equal(cause, "one VM name expected");
	a = parse(&vm_name, NARGS(one), one, &cause, msg, sizeof msg);
	assert_non_null(a);
	args_free(a);

	assert_null(parse(&serve, NARGS(two), two, &cause, msg, sizeof msg));
	assert_string_equal(cause, "too many arguments");
	/* too_many left out: too_few's message serves for both. */
	assert_null(parse(&create_spec, NARGS(two), two, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "expected one TARGET");
	assert_null(parse(&create_spec, NARGS(none), none, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "expected one TARGET");

	a = parse(&at_most_one, NARGS(none), none, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_count(a), 0);
	assert_null(args_positional(a, 0));
	args_free(a);
	assert_null(parse(&at_most_one, NARGS(two), two, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "at most one NAME");

	/* No messages in the spec: generic ones. */
	assert_null(parse(&list_spec, NARGS(one), one, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "no arguments expected");
	assert_null(parse(&generic, NARGS(one), one, &cause, msg, sizeof msg));
	assert_string_equal(cause, "too few arguments");
	assert_null(parse(&generic, NARGS(four), four, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "too many arguments");
	a = parse(&any, NARGS(four), four, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_count(a), 4);
	assert_string_equal(args_positional(a, 3), "d");
	args_free(a);
}

/* --json is taken by every command, before, between or after operands,
 * as a unique prefix, and more than once; not as a letter. */
static void
test_json(void **state)
{
	char		*before[] = { "vm show", "--json", "web1", NULL };
	char		*after[] = { "vm show", "web1", "--json", NULL };
	char		*between[] = { "role grant", "admin", "--json",
			    "user:x", NULL };
	char		*prefix[] = { "vm show", "--js", "web1", NULL };
	char		*twice[] = { "vm list", "--json", "--json", NULL };
	char		*letter[] = { "vm list", "-j", NULL };
	static const struct args_spec vm_name = { .lower = 1, .upper = 1 };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	a = parse(&vm_name, NARGS(before), before, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 1);
	assert_string_equal(args_positional(a, 0), "web1");
	args_free(a);
	a = parse(&vm_name, NARGS(after), after, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 1);
	assert_string_equal(args_positional(a, 0), "web1");
	args_free(a);
	a = parse(&grant_spec, NARGS(between), between, &cause, msg,
	    sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 1);
	assert_string_equal(args_positional(a, 0), "admin");
	assert_string_equal(args_positional(a, 1), "user:x");
	args_free(a);
	a = parse(&vm_name, NARGS(prefix), prefix, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 1);
	args_free(a);
	a = parse(&list_spec, NARGS(twice), twice, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 2);
	args_free(a);
	assert_null(parse(&list_spec, NARGS(letter), letter, &cause, msg,
	    sizeof msg));
	assert_string_equal(msg, "vm list: invalid option -- 'j'\n");
}

/* "--" ends the options: what follows is an operand, even "--json" or
 * "-x"; a lone "-" is an operand anyway. */
static void
test_dashdash(void **state)
{
	char		*argv[] = { "fence validate", "--json", "--",
			    "-weird", NULL };
	char		*json[] = { "vm show", "web1", "--", "--json", NULL };
	char		*dash[] = { "vm show", "-", NULL };
	static const struct args_spec validate = { .upper = 1 };
	static const struct args_spec vm_name = { .lower = 1, .upper = 1,
	    .too_many = "one VM name expected" };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	a = parse(&validate, NARGS(argv), argv, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "json"), 1);
	assert_int_equal(args_count(a), 1);
	assert_string_equal(args_positional(a, 0), "-weird");
	args_free(a);
	assert_null(parse(&vm_name, NARGS(json), json, &cause, msg,
	    sizeof msg));
	assert_string_equal(cause, "one VM name expected");
	a = parse(&vm_name, NARGS(dash), dash, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_string_equal(args_positional(a, 0), "-");
	assert_int_equal(args_has(a, "json"), 0);
	args_free(a);
}

static void
test_help(void **state)
{
	char	*last[] = { "disk create", "x", "--bogus", "--help", NULL };
	char	*letter[] = { "disk create", "-h", NULL };
	char	*value[] = { "disk create", "--help=1", NULL };
	char	*after[] = { "role revoke", "--", "--help", NULL };
	char	*none[] = { "disk create", "x", "--size", "1G", NULL };

	(void)state;
	assert_true(args_wants_help(NARGS(last), last));
	assert_true(args_wants_help(NARGS(letter), letter));
	assert_false(args_wants_help(NARGS(value), value));
	assert_false(args_wants_help(NARGS(after), after));
	assert_false(args_wants_help(NARGS(none), none));
}

/* An option name no spec has is simply not there. */
static void
test_not_in_spec(void **state)
{
	char		*argv[] = { "vm list", NULL };
	struct args	*a;
	const char	*cause;
	char		 msg[256];

	(void)state;
	a = parse(&list_spec, NARGS(argv), argv, &cause, msg, sizeof msg);
	assert_non_null(a);
	assert_int_equal(args_has(a, "size"), 0);
	assert_null(args_get(a, "size"));
	assert_null(args_value(a, "size", 0));
	args_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_repeated),
		cmocka_unit_test(test_next_order),
		cmocka_unit_test(test_missing_value),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_operands),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_dashdash),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_not_in_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
