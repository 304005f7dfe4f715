/*
 * Names and addresses of the network, checked the same way by haven.conf,
 * havenctl, havend and the worker: Linux interface names (the bridges a host
 * offers its guests) and Ethernet MAC addresses (a VM's NICs).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

/*
 * Linux's dev_valid_name (1 to IFNAMSIZ - 1 characters, not "." or "..",
 * no '/', ':' or white space), narrowed to letters, digits and "._-@+="
 * so that a name is safe in a file name, a log line and a command line.
 */
int
net_ifname_valid(const char *s)
{
	size_t	 n;

	if (s == NULL || (n = strlen(s)) == 0 || n >= NET_IFNAME_SIZE ||
	    strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s != '\0'; s++)
		if (((unsigned char)*s > 127 || !isalnum((unsigned char)*s)) &&
		    strchr("._-@+=", *s) == NULL)
			return 0;
	return 1;
}

/* "0a:1b:2c:3d:4e:5f", either case, exactly six pairs; -1: malformed. */
int
net_mac_parse(const char *s, uint8_t mac[NET_MAC_BYTES])
{
	int	 i, hi, lo;

	if (s == NULL || strlen(s) != NET_MAC_STRLEN)
		return -1;
	for (i = 0; i < NET_MAC_BYTES; i++, s += 3) {
		if ((hi = hex_digit(s[0])) == -1 ||
		    (lo = hex_digit(s[1])) == -1 ||
		    (i < NET_MAC_BYTES - 1 && s[2] != ':'))
			return -1;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
net_mac_format(const uint8_t mac[NET_MAC_BYTES], char s[NET_MAC_STRLEN + 1])
{
	snprintf(s, NET_MAC_STRLEN + 1, "%02x:%02x:%02x:%02x:%02x:%02x",
	    mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

/*
 * What makes a parsed MAC unusable for a guest's NIC, as a phrase ("is a
 * multicast address"), or NULL when it is fine. Any unicast address other
 * than all zeros will do: an operator may keep a vendor's address.
 */
const char *
net_mac_problem(const uint8_t mac[NET_MAC_BYTES])
{
	static const uint8_t	 zero[NET_MAC_BYTES];

	if (memcmp(mac, zero, NET_MAC_BYTES) == 0)
		return "is all zeros";
	if (mac[0] & NET_MAC_MULTICAST)
		return "is a multicast address (the first octet is odd)";
	return NULL;
}
