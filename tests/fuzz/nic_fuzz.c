/*
 * libFuzzer harness for havenctl's --nic parser (cli/parse.c): arbitrary
 * bytes as one --nic value. What it accepts must pass the rules havend
 * applies (proto/nic.c) once a MAC is filled in, and a refusal must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cli.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Haven__VmConfig	 vc = HAVEN__VM_CONFIG__INIT;
	Haven__Nic	 nic, *nics[1] = { &nic };
	char		 text[256], mac[18], err[256];

	if (size >= sizeof text || memchr(data, '\0', size) != NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (cli_parse_nic(text, &nic, mac, err, sizeof err) == -1) {
		if (err[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (*nic.mac == '\0')
		nic.mac = (char *)"0a:00:00:00:00:01";
	vc.name = (char *)"fuzz";
	vc.nics = nics;
	vc.n_nics = 1;
	if (nic_config_check(&vc, err, sizeof err) != 0)
		__builtin_trap();
	return 0;
}
