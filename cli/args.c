/*
 * One parser for every havenctl command: a command's options and operands
 * are data on its entry (struct args_spec), and this file turns the words
 * after the command's name into a struct args that the command only reads.
 * No I/O of its own, so tests/unit/cli_args_test.c links this file alone.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* getopt_long's value for the long option at index i of the spec (letters
 * are returned as themselves, below 256). */
#define ARGS_LONG	256

/* Every command takes --json, at any place; it is not in the specs. */
#define ARGS_JSON	"json"

struct args_entry {
	int		 option;	/* in the spec; noptions: --json */
	const char	*value;		/* NULL: the option takes none */
};

struct args {
	const struct args_spec	*spec;
	int			 noptions;	/* in the spec */
	struct args_entry	*entries;	/* in command-line order */
	int			 nentries;
	char			**operands;	/* into argv */
	int			 noperands;
};

/*
 * --help or -h anywhere before "--": havenctl then prints the command's
 * usage and nothing else, whatever else is wrong with the line.
 */
int
args_wants_help(int argc, char **argv)
{
	int	i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

static const char *
args_too_many(const struct args_spec *spec)
{
	if (spec->too_many != NULL)
		return spec->too_many;
	if (spec->too_few != NULL)
		return spec->too_few;
	return spec->upper == 0 ? "no arguments expected" :
	    "too many arguments";
}

static int
args_add(struct args *a, int option, const char *value)
{
	struct args_entry	*e;

	/* Bundled letters ("-rf") give more options than words: grow. */
	e = reallocarray(a->entries, a->nentries + 1, sizeof *e);
	if (e == NULL)
		return -1;
	a->entries = e;
	e[a->nentries].option = option;
	e[a->nentries].value = value;
	a->nentries++;
	return 0;
}

/*
 * Parse argv (argv[0] is the command's name) against spec. Returns the
 * parsed arguments (args_free frees them), or NULL: then *cause says what
 * is wrong, or is NULL when getopt has already said it on stderr.
 *
 * glibc's getopt_long does the scanning, so that every command takes its
 * options as it always has: before, between or after the operands,
 * "--name VALUE" or "--name=VALUE", any unique prefix of a long name,
 * "-s VALUE", "-sVALUE" and bundled letters, and "--" before operands
 * that start with '-'. Its messages name the command through argv[0]
 * ("disk create: unrecognized option '--bogus'").
 */
struct args *
args_parse(const struct args_spec *spec, int argc, char **argv,
    const char **cause)
{
	const struct args_option	*o;
	struct option			*longopts = NULL;
	struct args			*a = NULL;
	char				*letters = NULL, *p;
	int				 n = 0, i, c;

	*cause = NULL;
	while (spec->options != NULL && spec->options[n].name != NULL)
		n++;
	if ((a = calloc(1, sizeof *a)) == NULL ||
	    (longopts = calloc((size_t)n + 2, sizeof *longopts)) == NULL ||
	    (letters = malloc((size_t)n * 2 + 1)) == NULL)
		goto nomem;
	a->spec = spec;
	a->noptions = n;
	p = letters;
	for (i = 0; i < n; i++) {
		o = &spec->options[i];
		longopts[i].name = o->name;
		longopts[i].has_arg = o->flags & ARGS_VALUE ?
		    required_argument : no_argument;
		longopts[i].val = ARGS_LONG + i;
		if (o->letter != 0) {
			*p++ = (char)o->letter;
			if (o->flags & ARGS_VALUE)
				*p++ = ':';
		}
	}
	*p = '\0';
	longopts[n].name = ARGS_JSON;
	longopts[n].has_arg = no_argument;
	longopts[n].val = ARGS_LONG + n;

	/* 0, not 1: a full restart of glibc's getopt, which main left
	 * stopped at the command's name ("+" in its option string). */
	optind = 0;
	while ((c = getopt_long(argc, argv, letters, longopts, NULL)) != -1) {
		if (c >= ARGS_LONG)
			i = c - ARGS_LONG;
		else {
			for (i = 0; i < n; i++)
				if (spec->options[i].letter == c)
					break;
			if (i == n)
				goto fail;	/* '?': getopt said why */
		}
		if (args_add(a, i, i < n && (spec->options[i].flags &
		    ARGS_VALUE) ? optarg : NULL) == -1)
			goto nomem;
	}
	a->operands = argv + optind;
	a->noperands = argc - optind;
	if (a->noperands < spec->lower) {
		*cause = spec->too_few != NULL ? spec->too_few :
		    "too few arguments";
		goto fail;
	}
	if (spec->upper >= 0 && a->noperands > spec->upper) {
		*cause = args_too_many(spec);
		goto fail;
	}
	free(letters);
	free(longopts);
	return a;
nomem:
	*cause = "out of memory";
fail:
	free(letters);
	free(longopts);
	args_free(a);
	return NULL;
}

void
args_free(struct args *a)
{
	if (a == NULL)
		return;
	free(a->entries);
	free(a);
}

/* The spec's index of an option by its long name; noptions for --json. */
static int
args_find(const struct args *a, const char *option)
{
	int	i;

	for (i = 0; i < a->noptions; i++)
		if (strcmp(a->spec->options[i].name, option) == 0)
			return i;
	return strcmp(option, ARGS_JSON) == 0 ? a->noptions : -1;
}

/* How many times the option was given. */
int
args_has(const struct args *a, const char *option)
{
	int	i, id = args_find(a, option), n = 0;

	for (i = 0; i < a->nentries; i++)
		if (a->entries[i].option == id)
			n++;
	return n;
}

/* The option's value, the last one given if it was given more than once
 * (as getopt loops did); NULL if it was not given. */
const char *
args_get(const struct args *a, const char *option)
{
	int	i, id = args_find(a, option);

	for (i = a->nentries - 1; i >= 0; i--)
		if (a->entries[i].option == id)
			return a->entries[i].value;
	return NULL;
}

/* The n-th value (from 0) of an option that may be repeated, in the order
 * given ("--volume a --volume b"); NULL past the last. */
const char *
args_value(const struct args *a, const char *option, int n)
{
	int	i, id = args_find(a, option);

	for (i = 0; i < a->nentries; i++)
		if (a->entries[i].option == id && n-- == 0)
			return a->entries[i].value;
	return NULL;
}

/*
 * The options in the order given, for a command whose output follows it:
 * start with *i at 0; returns each option's long name (its value in
 * *value) and NULL after the last.
 */
const char *
args_next(const struct args *a, int *i, const char **value)
{
	const struct args_entry	*e;

	if (*i < 0 || *i >= a->nentries)
		return NULL;
	e = &a->entries[(*i)++];
	*value = e->value;
	return e->option < a->noptions ? a->spec->options[e->option].name :
	    ARGS_JSON;
}

/* The operands: how many, and each (NULL past the last). */
int
args_count(const struct args *a)
{
	return a->noperands;
}

const char *
args_positional(const struct args *a, int i)
{
	return i >= 0 && i < a->noperands ? a->operands[i] : NULL;
}
