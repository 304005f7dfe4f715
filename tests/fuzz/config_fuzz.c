/*
 * libFuzzer harness for haven.conf parsing: arbitrary bytes are parsed;
 * every error must name a line within the input and format to a line, and
 * a file that parses must satisfy the invariants havend relies on.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config		 config;
	static struct config_error	 errs[16];
	char				 text[512];
	size_t				 nerrs = 0, i, lines = 1;
	int				 rc;

	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	rc = config_parse_buffer((const char *)data, size, &config, errs, 16,
	    &nerrs);
	if ((rc == 0) != (nerrs == 0))
		__builtin_trap();
	for (i = 0; i < nerrs && i < 16; i++) {
		if (errs[i].line > lines || errs[i].message[0] == '\0')
			__builtin_trap();
		config_error_format(&errs[i], "haven.conf", text, sizeof text);
		if (strchr(text, '\n') != NULL)
			__builtin_trap();
	}
	if (rc == 0) {
		if (config.node_name[0] == '\0' ||
		    config.if_management[0] == '\0' ||
		    config.if_storage[0] == '\0' ||
		    config.if_migration[0] == '\0' ||
		    strcmp(config.if_management, config.if_storage) == 0 ||
		    strcmp(config.if_migration, config.if_storage) == 0 ||
		    config.nfences == 0 || config.nfences > CONFIG_MAX_FENCES)
			__builtin_trap();
		/* Bridges for guests: sorted, each once, valid, none of
		 * them another role's NIC. */
		if (config.nif_vm > CONFIG_MAX_VM_BRIDGES)
			__builtin_trap();
		for (i = 0; i < config.nif_vm; i++)
			if (!net_ifname_valid(config.if_vm[i]) ||
			    (i > 0 && strcmp(config.if_vm[i - 1],
			    config.if_vm[i]) >= 0) ||
			    strcmp(config.if_vm[i], config.if_management) == 0 ||
			    strcmp(config.if_vm[i], config.if_storage) == 0 ||
			    strcmp(config.if_vm[i], config.if_migration) == 0)
				__builtin_trap();
		for (i = 0; i < config.nfences; i++)
			if (config.fences[i].agent[0] == '\0' ||
			    config.fences[i].level == 0 ||
			    (i > 0 && config.fences[i].level <=
			    config.fences[i - 1].level))
				__builtin_trap();
	}
	config_wipe(&config);
	return 0;
}
