/*
 * Pacemaker's libstonithd (DESIGN §4): which fence agents are installed,
 * what options each takes (its metadata), whether a [fence:NAME] section's
 * options satisfy the agent (its validate-all), and the pacemaker fence
 * level (ask a local Pacemaker fencer). All of it blocks; see fence.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crm/stonith-ng.h>
#include <crm/common/results.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common.h"
#include "fence.h"

/* The client name the fencer logs. */
#define STONITH_CLIENT	"haven"

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
fence_stonith_agents(char ***names, size_t *n, char *err, size_t errlen)
{
	stonith_t		*st;
	stonith_key_value_t	*list = NULL, *kv;
	char			**v = NULL;
	size_t			 count = 0;
	int			 rc;

	*names = NULL;
	*n = 0;
	if ((st = stonith_api_new()) == NULL) {
		snprintf(err, errlen, "libstonithd could not be initialized");
		return -1;
	}
	rc = st->cmds->list_agents(st, st_opt_sync_call, NULL, &list, 0);
	stonith_api_delete(st);
	if (rc < 0) {
		snprintf(err, errlen, "libstonithd cannot list fence agents: "
		    "%s", pcmk_strerror(rc));
		return -1;
	}
	for (kv = list; kv != NULL; kv = kv->next)
		count++;
	if (count > 0 && (v = calloc(count, sizeof *v)) == NULL)
		goto nomem;
	count = 0;
	for (kv = list; kv != NULL; kv = kv->next) {
		if (kv->value == NULL)
			continue;
		if ((v[count] = strdup(kv->value)) == NULL)
			goto nomem;
		count++;
	}
	stonith_key_value_freeall(list, 1, 1);
	if (count > 0)
		qsort(v, count, sizeof *v, by_name);
	*names = v;
	*n = count;
	return 0;
nomem:
	stonith_key_value_freeall(list, 1, 1);
	fence_stonith_free_names(v, count);
	snprintf(err, errlen, "out of memory");
	return -1;
}

void
fence_stonith_free_names(char **names, size_t n)
{
	while (names != NULL && n > 0)
		free(names[--n]);
	free(names);
}

static int
agent_installed(const char *agent, char *err, size_t errlen)
{
	if (agent == NULL || strchr(agent, '/') != NULL ||
	    !stonith_agent_exists(agent, 0)) {
		snprintf(err, errlen, "no fence agent named '%s' is installed "
		    "('havenctl fence agents' lists them)", agent != NULL ?
		    agent : "");
		return 0;
	}
	return 1;
}

int
fence_stonith_metadata(const char *agent, char **xml, char *err,
    size_t errlen)
{
	stonith_t	*st;
	char		*out = NULL;
	int		 rc;

	*xml = NULL;
	if (!agent_installed(agent, err, errlen))
		return -1;
	if ((st = stonith_api_new()) == NULL) {
		snprintf(err, errlen, "libstonithd could not be initialized");
		return -1;
	}
	rc = st->cmds->metadata(st, st_opt_sync_call, agent, NULL, &out,
	    FENCE_STONITH_TIMEOUT_S);
	stonith_api_delete(st);
	if (rc != pcmk_ok || out == NULL) {
		snprintf(err, errlen, "%s gave no metadata: %s", agent,
		    pcmk_strerror(rc != pcmk_ok ? rc : -ENODATA));
		free(out);
		return -1;
	}
	*xml = out;
	return 0;
}

/* Whitespace runs to one space, trimmed. */
static void
copy_text(char *out, size_t outlen, const xmlChar *in)
{
	size_t	len = 0;
	int	space = 0;

	if (outlen == 0)
		return;
	for (; in != NULL && *in != '\0'; in++) {
		if (*in == ' ' || *in == '\t' || *in == '\n' || *in == '\r') {
			space = len > 0;
			continue;
		}
		if (space && len + 1 < outlen)
			out[len++] = ' ';
		space = 0;
		if (len + 1 < outlen)
			out[len++] = (char)*in;
	}
	out[len] = '\0';
}

static void
copy_attr(xmlNode *node, const char *name, char *out, size_t outlen)
{
	xmlChar	*v = xmlGetProp(node, (const xmlChar *)name);

	copy_text(out, outlen, v);
	xmlFree(v);
}

static xmlNode *
child_element(xmlNode *node, const char *name)
{
	xmlNode	*c;

	for (c = node != NULL ? node->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrcmp(c->name, (const xmlChar *)name) == 0)
			return c;
	return NULL;
}

/* <shortdesc> as a child element, or the shortdesc attribute. */
static void
shortdesc(xmlNode *node, char *out, size_t outlen)
{
	xmlNode	*d;
	xmlChar	*text;

	out[0] = '\0';
	if ((d = child_element(node, "shortdesc")) != NULL) {
		text = xmlNodeGetContent(d);
		copy_text(out, outlen, text);
		xmlFree(text);
	}
	if (out[0] == '\0')
		copy_attr(node, "shortdesc", out, outlen);
}

int
fence_stonith_params(const char *xml, struct fence_agent_param **params,
    size_t *n, char *desc, size_t desclen, char *err, size_t errlen)
{
	struct fence_agent_param	*v = NULL, *p;
	xmlDoc				*doc;
	xmlNode				*root, *list, *c, *content;
	char				 flag[8];
	size_t				 count = 0, i = 0;

	*params = NULL;
	*n = 0;
	doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || (root = xmlDocGetRootElement(doc)) == NULL ||
	    xmlStrcmp(root->name, (const xmlChar *)"resource-agent") != 0) {
		snprintf(err, errlen, "the agent's metadata is not a "
		    "<resource-agent> XML document");
		xmlFreeDoc(doc);
		return -1;
	}
	if (desc != NULL && desclen > 0)
		shortdesc(root, desc, desclen);
	list = child_element(root, "parameters");
	for (c = list != NULL ? list->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    xmlStrcmp(c->name, (const xmlChar *)"parameter") == 0)
			count++;
	if (count > 0 && (v = calloc(count, sizeof *v)) == NULL) {
		snprintf(err, errlen, "out of memory");
		xmlFreeDoc(doc);
		return -1;
	}
	for (c = list != NULL ? list->children : NULL; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE ||
		    xmlStrcmp(c->name, (const xmlChar *)"parameter") != 0)
			continue;
		p = &v[i++];
		copy_attr(c, "name", p->name, sizeof p->name);
		copy_attr(c, "required", flag, sizeof flag);
		p->required = strcmp(flag, "1") == 0 ||
		    strcmp(flag, "true") == 0;
		copy_attr(c, "deprecated", flag, sizeof flag);
		p->deprecated = strcmp(flag, "1") == 0 ||
		    strcmp(flag, "true") == 0;
		if ((content = child_element(c, "content")) != NULL) {
			copy_attr(content, "type", p->type, sizeof p->type);
			copy_attr(content, "default", p->default_value,
			    sizeof p->default_value);
		}
		shortdesc(c, p->description, sizeof p->description);
	}
	xmlFreeDoc(doc);
	*params = v;
	*n = i;
	return 0;
}

/* Noise of the agents' stderr: Python's warnings, the usage hint. */
static int
complaint_noise(const char *s)
{
	return *s == ' ' || *s == '\t' || strstr(s, "Warning: ") != NULL ||
	    strstr(s, "Please use '-h'") != NULL ||
	    strstr(s, "validate-all failed") != NULL;
}

/*
 * The agent's stderr as one line: its ERROR messages (want_errors) or its
 * WARNING ones, each once ("ERROR:root:x" and "<time> ERROR: x" are the
 * same message logged twice), joined by "; ".
 */
static void
collect_messages(const char *text, int want_errors, char *out, size_t outlen)
{
	const char	*line, *end, *m, *kind = want_errors ? "ERROR:" :
			    "WARNING:";
	char		 msg[512], tagged[520];
	size_t		 len, used = 0;

	out[0] = '\0';
	for (line = text; line != NULL && *line != '\0'; line = end) {
		end = strchr(line, '\n');
		len = end != NULL ? (size_t)(end - line) : strlen(line);
		end = end != NULL ? end + 1 : line + len;
		if (len >= sizeof msg)
			len = sizeof msg - 1;
		memcpy(msg, line, len);
		msg[len] = '\0';
		if (complaint_noise(msg) || (m = strstr(msg, kind)) == NULL)
			continue;
		m += strlen(kind);
		if (strncmp(m, "root:", 5) == 0)
			m += 5;
		while (*m == ' ')
			m++;
		if (*m == '\0')
			continue;
		snprintf(tagged, sizeof tagged, "%s", m);
		if (strstr(out, tagged) != NULL)
			continue;
		snprintf(out + used, outlen - used, "%s%s", used > 0 ? "; " :
		    "", tagged);
		used = strlen(out);
	}
}

int
fence_stonith_validate(const char *agent, const char *const *keys,
    const char *const *values, size_t n, char *detail, size_t detaillen)
{
	stonith_t		*st;
	stonith_key_value_t	*params = NULL, *kv;
	char			*output = NULL, *errors = NULL;
	size_t			 i;
	int			 rc, result;

	detail[0] = '\0';
	if (!agent_installed(agent, detail, detaillen))
		return -1;
	for (i = 0; i < n; i++)
		if (strcmp(keys[i], "action") != 0)
			params = stonith_key_value_add(params, keys[i],
			    values[i]);
	if ((st = stonith_api_new()) == NULL) {
		stonith_key_value_freeall(params, 1, 1);
		snprintf(detail, detaillen, "libstonithd could not be "
		    "initialized");
		return -1;
	}
	rc = st->cmds->validate(st, st_opt_sync_call, STONITH_CLIENT, NULL,
	    agent, params, FENCE_STONITH_TIMEOUT_S, &output, &errors);
	stonith_api_delete(st);
	/* The password went to the agent; wipe our copies. */
	for (kv = params; kv != NULL; kv = kv->next)
		if (kv->value != NULL)
			explicit_bzero(kv->value, strlen(kv->value));
	stonith_key_value_freeall(params, 1, 1);
	if (rc == pcmk_ok) {
		collect_messages(errors, 0, detail, detaillen);
		result = 0;
	} else if (rc == -ETIME || rc == -ETIMEDOUT) {
		snprintf(detail, detaillen, "%s did not answer validate-all "
		    "within %d s", agent, FENCE_STONITH_TIMEOUT_S);
		result = -1;
	} else {
		collect_messages(errors, 1, detail, detaillen);
		if (detail[0] == '\0')
			snprintf(detail, detaillen, "%s refused the options: "
			    "%s", agent, pcmk_strerror(rc));
		result = 1;
	}
	free(output);
	free(errors);
	return result;
}

int
fence_pacemaker_kick(const char *victim_name, uint32_t victim_node,
    unsigned timeout_s, char *detail, size_t detaillen)
{
	stonith_t	*st;
	char		 target[64];
	int		 rc, options = st_opt_sync_call;

	if (victim_name != NULL && *victim_name != '\0')
		snprintf(target, sizeof target, "%s", victim_name);
	else {
		snprintf(target, sizeof target, "%u", victim_node);
		options |= st_opt_cs_nodeid;
	}
	if ((st = stonith_api_new()) == NULL) {
		snprintf(detail, detaillen, "libstonithd could not be "
		    "initialized");
		return -1;
	}
	rc = st->cmds->connect(st, STONITH_CLIENT, NULL);
	if (rc != pcmk_ok) {
		stonith_api_delete(st);
		snprintf(detail, detaillen, "no Pacemaker fencer is running on "
		    "this host (%s)", pcmk_strerror(rc));
		return -1;
	}
	rc = st->cmds->fence(st, options, target, "off", (int)timeout_s, 0);
	st->cmds->disconnect(st);
	stonith_api_delete(st);
	if (rc != pcmk_ok) {
		snprintf(detail, detaillen, "Pacemaker's fencer could not "
		    "power %s off: %s", target, pcmk_strerror(rc));
		return -1;
	}
	snprintf(detail, detaillen, "Pacemaker's fencer powered %s off",
	    target);
	return 0;
}

struct pacemaker_job {
	char		 victim_name[64];
	uint32_t	 victim_node;
	unsigned	 timeout_s;
};

/* In the child: the blocking kick, its sentence as the last line. */
static int
pacemaker_child(void *arg)
{
	struct pacemaker_job	*job = arg;
	char			 detail[FENCE_AGENT_DETAIL_MAX];
	int			 rc;

	rc = fence_pacemaker_kick(job->victim_name, job->victim_node,
	    job->timeout_s, detail, sizeof detail);
	fprintf(rc == 0 ? stdout : stderr, "%s\n", detail);
	return rc == 0 ? 0 : 1;
}

struct fence_agent_run *
fence_pacemaker_start(struct event_base *base, const char *victim_name,
    uint32_t victim_node, unsigned timeout_ms, fence_agent_cb cb, void *arg)
{
	struct pacemaker_job	 job;
	unsigned		 grace = FENCE_AGENT_KILL_GRACE_MS;

	memset(&job, 0, sizeof job);
	snprintf(job.victim_name, sizeof job.victim_name, "%s",
	    victim_name != NULL ? victim_name : "");
	job.victim_node = victim_node;
	/* The fencer's own deadline ends before ours kills the child. */
	job.timeout_s = timeout_ms > grace + 1000 ?
	    (timeout_ms - grace) / 1000 : 1;
	/* The child gets its own copy of job with the rest of our memory. */
	return fence_agent_start_child(base, "pacemaker", pacemaker_child, &job,
	    timeout_ms, cb, arg);
}
